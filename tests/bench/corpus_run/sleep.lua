-- Answers after ?ms= milliseconds of ngx.sleep (a timer: the worker is
-- free meanwhile), for the request-latency samples.
ngx.sleep((tonumber(ngx.var.arg_ms) or 50) / 1000)
ngx.say("slept")
