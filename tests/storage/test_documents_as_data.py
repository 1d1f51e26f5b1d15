"""Documents are data: any JSON a client or partner sent comes back exactly as it came, on every engine.

No key or string (``$date``, ``$oid``, a dotted name, an operator) may change how a stored document is
decoded. Each example writes under fresh keys into the engine's one storage of the test.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.storage.test_locations import make_location
from tests.storage.test_parties import make_party

# Text as a JSON body can carry it (no lone surrogates). BSON field names are C strings, so keys carry no
# NUL; values may.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
KEYS = st.one_of(
    st.sampled_from(["$date", "$oid", "$numberLong", "$ref", "$id", "$regex", "$binary", "a.b", "_id", "$$NOW"]),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.sampled_from(["2024-03-01T12:00:00Z", "ObjectId('0123456789ab0123456789ab')", '{"$date": 0}']),
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=20,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=5)
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_serial = itertools.count()


@EXAMPLES
@given(business_details=OBJECTS, endpoint_extra=JSON)
def test_party_documents_round_trip_whatever_they_hold(storage, business_details, endpoint_extra):
    """A partner's free-form objects in a party (roles, endpoints) come back equal, and in the listing."""
    n = next(_serial)
    key = f"NL*E{n:02d}"
    party = make_party(key=key, inbound_token_hash=f"hash-{n}")
    party["roles"] = [
        {"role": "EMSP", "country_code": "NL", "party_id": f"E{n:02d}", "business_details": business_details}
    ]
    party["endpoints"] = [
        {"identifier": "locations", "role": "RECEIVER", "url": "http://e.test/l", "x": endpoint_extra}
    ]
    storage.parties.create(party)
    assert storage.parties.find(key) == party
    assert [found for found in storage.parties.all() if found["key"] == key] == [party]


@EXAMPLES
@given(name=TEXT, text=TEXT, language=TEXT)
def test_location_strings_round_trip_whatever_they_hold(storage, name, text, language):
    """Every string of a location (here its name and directions) comes back as sent, never decoded."""
    location = make_location(f"LOC{next(_serial)}")
    location["name"] = name
    location["directions"] = [{"language": language, "text": text}]
    storage.locations.put(location)
    assert storage.locations.find(location["id"]) == location


@EXAMPLES
@given(pairs=st.dictionaries(TEXT, TEXT, min_size=1, max_size=6))
def test_setting_names_and_values_round_trip_whatever_they_hold(storage, pairs):
    """Setting names and values are stored as values, never as field names or paths."""
    cs_id = f"cs{next(_serial)}"
    storage.charge_stations.put_auth(cs_id, {"security_profile": 0, "invalid_username_allowed": False})
    storage.charge_stations.merge_settings(
        cs_id, [{"name": k, "value": v, "status": "Pending"} for k, v in pairs.items()]
    )
    stored = {setting["name"]: setting["value"] for setting in storage.charge_stations.settings(cs_id)}
    assert stored == pairs
