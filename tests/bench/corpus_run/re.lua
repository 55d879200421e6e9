-- One regex match over a subject of exactly ?n= bytes (ngx.re.find: one
-- pcre_exec call with that length), for the PCRE samples.
local n = tonumber(ngx.var.arg_n) or 100
local subject = string.rep("a", n - 1) .. "b"
local from = ngx.re.find(subject, "b$", "o")
ngx.say(from)
