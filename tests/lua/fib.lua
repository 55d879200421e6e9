-- fib.lua: a CPU-bound benchmark with a fixed amount of work, for
-- measuring how much profiling slows a LuaJIT program down.
--
--   luajit tests/lua/fib.lua [N] [ROUNDS]
--
-- Computes fib(N) (default 30) by naive recursion ROUNDS times (default 10;
-- the call stack is N deep), prints "ready" first and the result last.

io.stdout:write("ready\n")
io.stdout:flush()

local n = tonumber(arg and arg[1]) or 30
local rounds = tonumber(arg and arg[2]) or 10

local function fib(k) -- @def:fib
    if k < 2 then return k end
    return fib(k - 1) + fib(k - 2) -- @hot:fib
end

local r
for _ = 1, rounds do
    r = fib(n) -- @call:fib
end
print(r)
