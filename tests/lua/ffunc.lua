-- ffunc.lua: nearly all the time in one fast function, string.gsub,
-- called from one Lua function in a loop. string.gsub is a fast function
-- that LuaJIT implements in C (lib_string.c, LJLIB_CF) and does not
-- compile, so with the JIT on as off the VM enters its frame and calls
-- it from the interpreter, and the sampled backtrace starts there. (The
-- fast functions written in assembly, such as string.byte or math.floor,
-- return before a sample can see their frame, and compiled code inlines
-- them.)
--
--   luajit -joff tests/lua/ffunc.lua    interpreted
--   luajit tests/lua/ffunc.lua          JIT on: the same frames
--
-- Prints "ready" when the script starts, then runs until killed.
--
-- Markers at the end of lines: "def:NAME" where NAME is defined, "call:NAME"
-- where it is called.
--
-- Expected Lua backtrace of nearly every sample, innermost first
-- (lj-lua-stacks prints the fast function as builtin#FFID, its id in
-- LuaJIT's FastFunc enum; flame graphs name it string.gsub):
--
--   string.gsub  builtin
--   replacer     line call:gsub      defined at def:replacer
--   main chunk   line call:replacer  (defined at line 0)

io.stdout:write("ready\n")
io.stdout:flush()

local gsub = string.gsub
local text = string.rep("abc ", 2000)

local function replacer() -- @def:replacer
    local n = 0
    while true do
        local r = gsub(text, "b", "x") -- @call:gsub
        n = n + #r
    end
end

replacer() -- @call:replacer
