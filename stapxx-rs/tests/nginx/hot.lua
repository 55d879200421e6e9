-- The hot handler of the nginx tests (content_by_lua_file).
--
-- Each request spends nearly all its time in render(), the __tostring
-- metamethod of a report object. lua-nginx-module's C function behind
-- ngx.log calls it (luaL_callmeta), so the backtrace of a sample in render
-- has a C frame of the Lua module between Lua frames:
--
--   render <- C:ngx_http_lua_ngx_log <- report <- handle <- this chunk
--
-- The `-- @def:NAME` / `-- @hot:NAME` comments mark the lines the tests
-- expect in the frames: where each function is defined, and the loop that
-- burns the time.

local ITERATIONS = 30000

local Report = {}

Report.__tostring = function(self) -- @def:render
    local acc = 0
    for i = 1, self.n do
        acc = (acc * 31 + i) % 1000003 -- @hot:render
    end
    return "report " .. acc
end

local function report(n) -- @def:report
    local r = setmetatable({ n = n }, Report)
    ngx.log(ngx.NOTICE, r)
end

local function handle() -- @def:handle
    report(ITERATIONS)
    ngx.say("hot")
end

handle()
