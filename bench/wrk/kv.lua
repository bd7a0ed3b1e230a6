-- kv.lua -- wrk request generator for the HTTP benchmarks (bench/http.sh).
-- wrk -s kv.lua URL -- MODE [KEYS]
--   get      GET  <URL>/get?key=k<random below KEYS>
--   set      POST <URL>/set {"key":"k<random below KEYS>","value":<100 bytes>}
--   load     POST <URL>/set k0..k<KEYS-1>, threads interleaved (wrk -- load KEYS THREADS)
--   fill     POST <URL>/set with keys d<thread>-<n>, each once, in order
--   del      DELETE <URL>/del?key=d<thread>-<n>, the keys fill wrote
--   wget     webdis GET /GET/k<random>      wset  webdis /SET/k<random>/<value>
--   eput     etcd gateway POST /v3/kv/put   erange etcd POST /v3/kv/range
-- Every wrk thread has its own Lua state; setup() numbers them so that
-- fill and del walk disjoint key sequences.
local counter = 0
local nthread = 0
local value = string.rep("v", 100)

function setup(thread)
    thread:set("tid", nthread)
    nthread = nthread + 1
end

local function b64(s)
    local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return ((s:gsub(".", function(x)
        local r, b = "", x:byte()
        for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
        return r
    end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
        if #x < 6 then return "" end
        local c = 0
        for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
        return chars:sub(c + 1, c + 1)
    end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

function init(args)
    mode = args[1] or "get"
    keys = tonumber(args[2] or "10000")
    args_threads = args[3] or "1"
    math.randomseed(os.time() + (tid or 0))
    base = wrk.path:gsub("/$", "")
    evalue = b64(value)
end

function request()
    counter = counter + 1
    local k = "k" .. math.random(0, keys - 1)
    if mode == "get" then
        return wrk.format("GET", base .. "/get?key=" .. k)
    elseif mode == "set" then
        return wrk.format("POST", base .. "/set", { ["Content-Type"] = "application/json" },
                          '{"key":"' .. k .. '","value":"' .. value .. '"}')
    elseif mode == "load" then
        local n = (tid + tonumber(args_threads) * (counter - 1)) % keys
        return wrk.format("POST", base .. "/set", { ["Content-Type"] = "application/json" },
                          '{"key":"k' .. n .. '","value":"' .. value .. '"}')
    elseif mode == "fill" then
        return wrk.format("POST", base .. "/set", { ["Content-Type"] = "application/json" },
                          '{"key":"d' .. tid .. "-" .. counter .. '","value":"' .. value .. '"}')
    elseif mode == "del" then
        return wrk.format("DELETE", base .. "/del?key=d" .. tid .. "-" .. counter)
    elseif mode == "wget" then
        return wrk.format("GET", "/GET/" .. k)
    elseif mode == "wset" then
        return wrk.format("GET", "/SET/" .. k .. "/" .. value)
    elseif mode == "eput" then
        return wrk.format("POST", "/v3/kv/put", nil,
                          '{"key":"' .. b64(k) .. '","value":"' .. evalue .. '"}')
    elseif mode == "erange" then
        return wrk.format("POST", "/v3/kv/range", nil, '{"key":"' .. b64(k) .. '"}')
    end
end
