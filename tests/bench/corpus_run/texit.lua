-- Leaves compiled code a known number of times and says how many: all
-- traces are flushed first (so the loop below is compiled afresh and its
-- exit is not yet patched to a side trace), and LuaJIT's own "texit" VM
-- event counts every exit while the loop runs. The body is that count.
jit.flush()
local exits = 0
local function count() exits = exits + 1 end
jit.attach(count, "texit")
local acc = 0
for i = 1, 20000 do
    acc = (acc * 31 + i) % 1000003
end
jit.attach(count)
ngx.say(exits)
