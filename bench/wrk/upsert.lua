-- POST /api/v0/token with a valid Token body for a random existing uid, so the collection keeps its size.
--
-- Arguments (after wrk's "--"): the file of token uids.

local common = require "common"

local uids
local body_format = '{"countryCode": "GB", "partyId": "TWK", "type": "RFID", "uid": "%s", '
  .. '"contractId": "GB-TWK-%09d", "issuer": "Benchmark", "valid": true, "cacheMode": "ALWAYS"}'
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  common.seed()
  uids = common.load_lines(assert(args[1], "upsert.lua needs the file of token uids"))
end

function request()
  local body = string.format(body_format, common.pick(uids), math.random(0, 999999999))
  return wrk.format("POST", "/api/v0/token", headers, body)
end
