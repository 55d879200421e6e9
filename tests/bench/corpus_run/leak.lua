-- ?n= blocks of ?size= bytes from libc's malloc (through the FFI), never
-- freed: a leak of a known size and a known backtrace (LuaJIT's FFI call).
local ffi = require "ffi"
pcall(ffi.cdef, "void *malloc(size_t size);")
local n = tonumber(ngx.var.arg_n) or 1
local size = tonumber(ngx.var.arg_size) or 12345
for _ = 1, n do
    assert(ffi.C.malloc(size) ~= nil)
end
ngx.say("leaked")
