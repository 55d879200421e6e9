-- fib.lua: a CPU-bound benchmark with a fixed amount of work, for
-- measuring how much profiling slows a LuaJIT program down.
--
--   luajit tests/lua/fib.lua [N] [ROUNDS] [wait]
--
-- Computes fib(N) (default 30) by naive recursion ROUNDS times (default 10;
-- the call stack is N deep). Prints "ready" first; with "wait", then waits
-- for a line on stdin before it starts (so a profiler can attach first).
-- Prints the result and the CPU seconds the work took last.

io.stdout:write("ready\n")
io.stdout:flush()

local n = tonumber(arg and arg[1]) or 30
local rounds = tonumber(arg and arg[2]) or 10
if arg and arg[3] == "wait" then io.read() end

local function fib(k) -- @def:fib
    if k < 2 then return k end
    return fib(k - 1) + fib(k - 2) -- @hot:fib
end

local t0 = os.clock()
local r
for _ = 1, rounds do
    r = fib(n) -- @call:fib
end
print(r, os.clock() - t0)
