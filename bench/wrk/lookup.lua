-- GET requests drawn from weighted groups, each a path template and optionally a file of ids.
--
-- Arguments (after wrk's "--"): one or more groups "WEIGHT|TEMPLATE|IDS_FILE", where "{id}" in TEMPLATE
-- is replaced by a random line of IDS_FILE (IDS_FILE empty: TEMPLATE is sent as it is).
--   wrk -s lookup.lua URL -- "90|/api/v0/cs/{id}/auth|stations.txt" "10|/api/v0/token/{id}|tokens.txt"

local common = require "common"

local groups = {}
local total_weight = 0

local function split(text)
  local parts = {}
  for part in (text .. "|"):gmatch("([^|]*)|") do
    parts[#parts + 1] = part
  end
  return parts
end

function init(args)
  common.seed()
  for _, arg in ipairs(args) do
    local parts = split(arg)
    local weight = assert(tonumber(parts[1]), "bad group " .. arg)
    local ids = nil
    if parts[3] and parts[3] ~= "" then
      ids = common.load_lines(parts[3])
    end
    total_weight = total_weight + weight
    groups[#groups + 1] = { limit = total_weight, template = parts[2], ids = ids }
  end
  assert(#groups > 0, "lookup.lua needs at least one group")
end

local function path_of(group)
  if group.ids == nil then
    return group.template
  end
  -- A function replacement, so that "%" in an id is taken literally.
  return (group.template:gsub("{id}", function() return common.pick(group.ids) end))
end

function request()
  local roll = math.random() * total_weight
  for _, group in ipairs(groups) do
    if roll < group.limit then
      return wrk.format("GET", path_of(group))
    end
  end
  return wrk.format("GET", path_of(groups[#groups]))
end
