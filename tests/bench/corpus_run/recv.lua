-- ?n= round trips on one cosocket to the runner's slow line-echo
-- listener (?port=), which answers each line after a fixed delay: n
-- receives of a known latency in one request.
local port = tonumber(ngx.var.arg_port)
local n = tonumber(ngx.var.arg_n) or 1
local s = ngx.socket.tcp()
assert(s:connect("127.0.0.1", port))
for _ = 1, n do
    assert(s:send("ping\n"))
    assert(s:receive("*l") == "ping")
end
s:close()
ngx.say(n)
