-- offcpu.lua: a known split between sleeping and running, for off-CPU
-- flame graphs.
--
--   luajit -joff tests/lua/offcpu.lua ROUNDS [wait]
--
-- Each round sleeps 20 ms in poll(2) (through the FFI, so the Lua frames
-- calling it are on the stack while the thread is off the CPU), then spins
-- for about 10 ms. Prints "ready" at the start and, at the end,
-- "slept_us N": the wall-clock microseconds spent in those poll calls
-- (asleep, then waiting to run again). With a second
-- argument it reads a line from stdin before the first round (a tracer
-- attaches meanwhile).

local ffi = require("ffi")
ffi.cdef[[
struct pollfd;
int poll(struct pollfd *fds, unsigned long nfds, int timeout);
struct timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct timespec *ts);
]]

local ts = ffi.new("struct timespec")
local function now_us()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

io.stdout:write("ready\n")
io.stdout:flush()

local rounds = tonumber(arg and arg[1]) or 50
if arg and arg[2] then
    io.stdin:read("*l")
end

local slept = 0

local function nap() -- @def:nap
    local t0 = now_us()
    ffi.C.poll(nil, 0, 20) -- @hot:nap
    slept = slept + (now_us() - t0)
end

local function work() -- @def:work
    local t = os.clock() + 0.01
    while os.clock() < t do end
end

local function round()
    nap()
    work()
end

for _ = 1, rounds do
    round()
end
io.stdout:write(string.format("slept_us %d\n", slept))
