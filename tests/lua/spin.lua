-- spin.lua: a function that spins forever on one known line, reached
-- through a known chain of three functions (no tail calls anywhere).
--
--   luajit -joff tests/lua/spin.lua    interpreted: the frames below are exact
--   luajit tests/lua/spin.lua          JIT on: the loop runs as a trace
--
-- Prints "ready" when the script starts, then runs until killed.
--
-- Line numbers are given by markers at the end of lines: "def:NAME" is the
-- line where function NAME is defined (GCproto.firstline), "hot:NAME" the
-- line it spends its time on, "call:NAME" the line that calls NAME.
--
-- Expected Lua backtrace of every sample with -joff, innermost first (the
-- chunk name is "@" followed by the script path as given to luajit):
--
--   spin        line hot:spin      defined at def:spin
--   third       line call:spin     defined at def:third
--   second      line call:third    defined at def:second
--   first       line call:second   defined at def:first
--   main chunk  line call:first    (defined at line 0)

io.stdout:write("ready\n")
io.stdout:flush()

local function spin() -- @def:spin
    local n = 0
    while true do n = n + 1 end -- @hot:spin
end

local function third() -- @def:third
    spin() -- @call:spin
end

local function second() -- @def:second
    third() -- @call:third
end

local function first() -- @def:first
    second() -- @call:second
end

first() -- @call:first
