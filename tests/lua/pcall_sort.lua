-- pcall_sort.lua: Lua -> C -> Lua chains through two builtins and a plain
-- C function: the main loop runs inside a module that `require` (a C
-- function, lj_cf_package_require in lib_package.c) loads from
-- package.preload and calls; the loop pcalls a Lua function that calls
-- table.sort (implemented in C), which calls the Lua comparator, where
-- nearly all the time goes.
--
-- Prints "ready" when the script starts, then runs until killed.
--
-- Markers at the end of lines: "def:NAME" where NAME is defined, "hot:NAME"
-- where it spends its time, "call:NAME" where it is called.
--
-- Expected Lua backtrace of nearly every sample with -joff, innermost first
-- (builtins are fast functions: lj-lua-stacks prints them as builtin#FFID,
-- with the ids of jit/vmdef.lua's ffnames; in luajit2 2.1-20230119
-- table.sort is 99 and pcall 20; C functions as C:SYMBOL):
--
--   cmp         line hot:cmp        defined at def:cmp
--               (about 80% of the samples; the rest on cmp's other lines
--               or in table.sort's own C code, where the backtrace starts
--               at the builtin)
--   table.sort  builtin
--   sorter      line call:sort      defined at def:sorter
--   protected   line call:sorter    defined at def:protected
--   pcall       builtin
--   loop        line call:pcall     defined at def:loop
--   require     C:lj_cf_package_require
--   main chunk  line call:require
--   (luajit.c's pmain, the C function lua_cpcall runs the script in)

io.stdout:write("ready\n")
io.stdout:flush()

local function cmp(a, b) -- @def:cmp
    local w = 0
    for i = 1, 50 do w = w + i end -- @hot:cmp
    return a < b
end

local data = {}

local function sorter() -- @def:sorter
    for i = 1, 300 do data[i] = (i * 7919) % 1000 end
    table.sort(data, cmp) -- @call:sort
    return data[1]
end

local function protected() -- @def:protected
    local r = sorter() -- @call:sorter
    return r
end

package.preload.sortloop = function() -- @def:loop
    while true do
        local ok, r = pcall(protected) -- @call:pcall
        assert(ok, r)
    end
end

require("sortloop") -- @call:require
