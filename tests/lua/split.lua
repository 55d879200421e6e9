-- split.lua: two functions sharing the CPU 3:1.
--
-- heavy and light run the same loop body; heavy runs it three times as
-- often per call, and the main loop calls each once per round, so about
-- 75% of the samples fall in heavy and 25% in light, interpreted (-joff)
-- or compiled (each loop becomes its own trace).
--
-- Prints "ready" when the script starts, then runs until killed, or, given
-- a number of seconds as its argument, until it used that much CPU time
-- (so that LuaJIT's own profiler, luajit -jp, reports at exit).
--
-- Markers at the end of lines: "def:NAME" where NAME is defined, "hot:NAME"
-- where it spends its time, "call:NAME" where it is called.
--
-- Expected Lua backtraces with -joff, innermost first:
--
--   75%:  heavy (line hot:heavy, defined at def:heavy)
--         main chunk (line call:heavy)
--   25%:  light (line hot:light, defined at def:light)
--         main chunk (line call:light)

io.stdout:write("ready\n")
io.stdout:flush()

local N = 100000

local function heavy() -- @def:heavy
    local x = 0
    for i = 1, 3 * N do x = x + i % 7 end -- @hot:heavy
    return x
end

local function light() -- @def:light
    local x = 0
    for i = 1, N do x = x + i % 7 end -- @hot:light
    return x
end

local limit = tonumber(arg and arg[1])
local sink = 0
while true do
    sink = sink + heavy() -- @call:heavy
    sink = sink + light() -- @call:light
    if sink > 1e15 then sink = 0 end
    if limit and os.clock() >= limit then break end
end
