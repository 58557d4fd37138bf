-- Removes sluice's credentials before a request goes upstream, as Pomerium's clean-upstream
-- filter does: the session cookies (COOKIE, its chunks COOKIE_1.., COOKIE_authenticate,
-- COOKIE_csrf), "Authorization: Pomerium ..." and X-Pomerium-Authorization. ext_authz runs
-- before this filter and has read them already. Only request headers: bodies pass untouched.
local name = COOKIE_NAME
local prefix = name .. "_"

local function is_session_cookie(cookie)
  if cookie == name then
    return true
  end
  if cookie:sub(1, #prefix) ~= prefix then
    return false
  end
  local rest = cookie:sub(#prefix + 1)
  return rest == "authenticate" or rest == "csrf" or rest:match("^%d+$") ~= nil
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local count = headers:getNumValues("cookie")
  if count > 0 then
    local kept = {}
    local removed = false
    for i = 0, count - 1 do
      local value = headers:getAtIndex("cookie", i) or ""
      for pair in value:gmatch("[^;]+") do
        local trimmed = pair:match("^%s*(.-)%s*$")
        local cookie = trimmed:match("^([^=]*)")
        if is_session_cookie(cookie) then
          removed = true
        elseif trimmed ~= "" then
          kept[#kept + 1] = trimmed
        end
      end
    end
    if removed then
      headers:remove("cookie")
      if #kept > 0 then
        headers:add("cookie", table.concat(kept, "; "))
      end
    end
  end
  local authorization = headers:get("authorization")
  if authorization ~= nil and authorization:lower():sub(1, 9) == "pomerium " then
    headers:remove("authorization")
  end
  headers:remove("x-pomerium-authorization")
end
