-- Holds the worker for ?ms= milliseconds without yielding (no I/O, no
-- sleep): the event loop is blocked and Lua runs the whole time, so the
-- epoll and Lua-time samples have a known figure to show.
local ms = tonumber(ngx.var.arg_ms) or 20
ngx.update_time()
local t0 = ngx.now()
repeat
    ngx.update_time()
until (ngx.now() - t0) * 1000 >= ms
ngx.say("busy")
