-- ?n= queries over one UDP cosocket to the runner's slow UDP echo
-- listener (?port=), which answers each datagram after a fixed delay;
-- the datagram is ?q= (default "ping").
local port = tonumber(ngx.var.arg_port)
local n = tonumber(ngx.var.arg_n) or 1
local q = ngx.var.arg_q or "ping"
local s = ngx.socket.udp()
assert(s:setpeername("127.0.0.1", port))
for _ = 1, n do
    assert(s:send(q))
    assert(s:receive() == q)
end
s:close()
ngx.say(n)
