-- Cosockets to the runner's line-echo listener (?port=).
--
-- mode=unused: one connection used and put back in the pool, then one
-- taken from the pool and closed without a send or a read: exactly one
-- "useless" cosocket per request.  mode=used: the pooled connection is
-- taken and used: none.
local port = tonumber(ngx.var.arg_port)
local mode = ngx.var.arg_mode or "used"

local function roundtrip(s)
    assert(s:send("ping\n"))
    assert(s:receive("*l") == "ping")
end

local s1 = ngx.socket.tcp()
assert(s1:connect("127.0.0.1", port))
roundtrip(s1)
assert(s1:setkeepalive(10000, 4))

local s2 = ngx.socket.tcp()
assert(s2:connect("127.0.0.1", port))
if mode == "unused" then
    s2:close()
else
    roundtrip(s2)
    assert(s2:setkeepalive(10000, 4))
end
ngx.say(mode)
