-- A small CPU-bound Lua program for the demo: three kinds of work in a
-- loop, taking roughly half, a third and a sixth of the time.

local function checksum(s)
    local h = 0
    for i = 1, #s do
        h = (h * 31 + s:byte(i)) % 2147483647
    end
    return h
end

local function parse_numbers(text)
    local sum = 0
    for n in text:gmatch("%d+") do
        sum = sum + tonumber(n)
    end
    return sum
end

local function fib(n)
    if n < 2 then return n end
    return fib(n - 1) + fib(n - 2)
end

local text = string.rep("12 345 6789 ", 200)

local function serve()
    checksum(text)
    checksum(text)
    checksum(text)
    parse_numbers(text)
    parse_numbers(text)
    fib(16)
end

io.stdout:write("ready\n")
io.stdout:flush()
while true do
    serve()
end
