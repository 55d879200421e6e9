-- Steps LuaJIT's collector by hand over garbage of its own, with the
-- automatic steps stopped, and says how many bytes those steps freed as the
-- collector's own count (gc.total, in KiB as a float: exact) shows them;
-- then holds the worker ?ms= milliseconds so that a timer interrupt lands
-- in it. The JIT is off: compiling a trace allocates GC memory too.
jit.off()
collectgarbage("stop")
local garbage = {}
for i = 1, tonumber(ngx.var.arg_n) or 20000 do
    garbage[i] = { i }
end
garbage = nil
local before = collectgarbage("count")
local cycles = 0
-- two whole cycles: garbage made while a cycle was sweeping is swept by
-- the next one
while cycles < 2 do
    if collectgarbage("step", 0) then
        cycles = cycles + 1
    end
end
local freed = (before - collectgarbage("count")) * 1024
local ms = tonumber(ngx.var.arg_ms) or 0
ngx.update_time()
local t0 = ngx.now()
while (ngx.now() - t0) * 1000 < ms do
    ngx.update_time()
end
ngx.say(string.format("freed %d", freed))
