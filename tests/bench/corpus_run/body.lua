-- A body of exactly ?n= bytes, for the response-size samples.
ngx.print(string.rep("x", tonumber(ngx.var.arg_n) or 1000))
