-- authgear-forwardauth for HAProxy 2.6 or later (CI runs Debian 12's 2.6.12),
-- with HAProxy's own HTTP client and no other library. It adds one action:
--
--   http-request lua.forwardauth <auth URL>
--
-- The auth URL's query string is the route's access policy (see
-- haproxy.cfg). The action asks the service about the request. On a 2xx it
-- sets the service's X-Authgear-* headers on the request, which goes on, and
-- sets txn.forwardauth to "allow". On any other answer (401, 403, the sign-in
-- 302 with its Location and Set-Cookie, a 5xx, or HAProxy's own 503/504 when
-- the service cannot be reached in time) it returns that answer to the client
-- and the request goes no further. HAProxy lets a request go on when a Lua
-- action fails, so haproxy.cfg refuses every request this action did not
-- allow.

if not core.httpclient then
  error("forwardauth.lua needs HAProxy 2.6 or later (core.httpclient)")
end

-- Client headers not passed to the service: hop-by-hop ones, the body's
-- framing (the call is a GET without a body), and any description of the
-- original request (x-forwarded-*, x-original-*, below), which only this
-- script gives.
local not_passed = {
  ["connection"] = true, ["keep-alive"] = true, ["proxy-connection"] = true,
  ["te"] = true, ["trailer"] = true, ["transfer-encoding"] = true,
  ["upgrade"] = true, ["http2-settings"] = true, ["expect"] = true,
  ["content-length"] = true, ["host"] = true, ["forwarded"] = true,
  ["x-real-ip"] = true,
  -- HAProxy's client cannot decompress.
  ["accept-encoding"] = true,
}

-- Most client header lines passed to the service. HAProxy 2.6's HTTP client
-- crashes the whole process (Debian 12's 2.6.12: a segmentation fault) when
-- its request has more header lines than tune.http.maxhdr (101), and the call
-- adds up to six of its own: a request with more than this is refused (431)
-- before the call. Browsers send about twenty.
local max_passed = 90

-- Headers of the service's refusal that HAProxy sets itself on the reply.
local framing = {
  ["connection"] = true, ["keep-alive"] = true, ["proxy-connection"] = true,
  ["te"] = true, ["trailer"] = true, ["transfer-encoding"] = true,
  ["upgrade"] = true, ["content-length"] = true,
}

-- The service's rule for a client-sent identity header: the name, with every
-- character but a-z and 0-9 removed, starts with "xauthgear". That covers
-- X_Authgear_User_Id, x.authgear.user.id and the like, which CGI-style
-- frameworks read as X-Authgear-User-Id. HAProxy gives names in lower case.
local function identity_header(name)
  return name:find("^[^a-z0-9]*x") ~= nil and name:gsub("[^a-z0-9]", ""):sub(1, 9) == "xauthgear"
end

-- The values of a header name in HAProxy's tables: from index 0 (request
-- headers, and the client's answers in 2.6), or from 1; both are read.
local function each_value(values, fn)
  for i = 0, #values do
    if values[i] ~= nil then
      fn(values[i])
    end
  end
end

local function forwardauth(txn, url)
  local http = txn.http
  local request = http:req_get_headers()
  local headers = {}
  local passed = 0
  for name, values in pairs(request) do
    if identity_header(name) then
      -- haproxy.cfg already removed these; this is a second line of defence.
      http:req_del_header(name)
    elseif not not_passed[name] and not name:find("^x%-forwarded%-") and not name:find("^x%-original%-") then
      local list = {}
      each_value(values, function(v) list[#list + 1] = v end)
      headers[name] = list
      passed = passed + #list
    end
  end
  if passed > max_passed then
    local reply = txn:reply()
    reply:set_status(431)
    reply:add_header("content-type", "text/plain")
    reply:set_body("too many header fields")
    txn:done(reply)
    return
  end
  -- The original request, in the convention of Traefik and Caddy: the service
  -- answers a browser that must sign in with a 302 (to nginx's X-Original-*
  -- it answers a 401 with a Location, for nginx to turn into a redirect).
  headers["x-forwarded-method"] = { txn.sf:method() }
  headers["x-forwarded-proto"] = { txn.sf:ssl_fc() == "1" and "https" or "http" }
  headers["x-forwarded-uri"] = { txn.sf:pathq() }
  headers["x-forwarded-for"] = { txn.sf:src() }
  if request["host"] ~= nil then
    headers["x-forwarded-host"] = { request["host"][0] }
  end
  -- The body the call does not carry (the service passes a CORS preflight
  -- only without one; haproxy.cfg refuses such an OPTIONS already).
  if request["content-length"] ~= nil then
    headers["x-original-content-length"] = { request["content-length"][0] }
  end

  -- Each try may take this long; HAProxy's client tries up to 4 times when
  -- the service cannot be reached or does not answer, then answers 503/504.
  local timeout = tonumber(txn:get_var("proc.forwardauth_timeout")) or 3000
  local res = core.httpclient():get{ url = url, headers = headers, timeout = timeout }
  local status = tonumber(res and res.status) or 0

  if status >= 200 and status <= 299 then
    -- Every X-Authgear-* of the answer, whichever the service sends; an
    -- empty one is left out (the application sees no header).
    for name, values in pairs(res.headers or {}) do
      if name:find("^x%-authgear%-") then
        each_value(values, function(v)
          if v ~= "" then
            http:req_add_header(name, v)
          end
        end)
      end
    end
    txn:set_var("txn.forwardauth", "allow")
    return
  end

  if status < 100 or status > 599 then
    status = 502
  end
  local reply = txn:reply()
  reply:set_status(status)
  for name, values in pairs(res.headers or {}) do
    if not framing[name] then
      each_value(values, function(v) reply:add_header(name, v) end)
    end
  end
  reply:set_body(res.body or "")
  txn:done(reply)
end

core.register_action("forwardauth", { "http-req" }, forwardauth, 1)
