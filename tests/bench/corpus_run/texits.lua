-- A LuaJIT target with a known number of trace exits: LuaJIT's own
-- "texit" VM event counts every exit from compiled code.  Each stdin line
-- "go K" runs a compiled loop K times and answers "done N" with the exits
-- the VM reported meanwhile; between lines the process blocks in read(2)
-- and runs no Lua code at all.
local exits = 0
jit.attach(function() exits = exits + 1 end, "texit")

local function work()
    local s = 0
    for i = 1, 300 do s = s + i end
    return s
end

io.stdout:write("ready\n")
io.stdout:flush()
for line in io.stdin:lines() do
    local k = tonumber(line:match("^go (%d+)")) or 0
    exits = 0
    for _ = 1, k do work() end
    local seen = exits
    io.stdout:write("done ", seen, "\n")
    io.stdout:flush()
end
