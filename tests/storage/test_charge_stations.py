"""Charge stations on every engine: auth record, settings, certificates to install and trigger."""

from __future__ import annotations

import pytest

from maeve_api.storage import NotFound
from tests.storage.conftest import CODE_POINT_KEYS, assert_not_found

AUTH = {"security_profile": 2, "password_hash": "cGFzc3dvcmQ=", "invalid_username_allowed": True}
# Names a naive key encoding would break: field paths, operators, separators, non-ASCII, blanks.
AWKWARD_NAMES = (
    "Device.Setting.Value",
    "$set",
    "a$b",
    "x;y",
    "OCPPCommCtrlr/HeartbeatInterval",
    "Zähler",
    "名前",
    "\U0001f50c plug",
    " ",
    "",
    '"quoted"',
    "back\\slash",
    '["cs","x"]',
)


def register(storage, cs_id="cs001"):
    storage.charge_stations.put_auth(cs_id, {"security_profile": 1})


def setting(name, value="1", status="Pending"):
    return {"name": name, "value": value, "status": status}


def certificate(certificate_id, type_="V2GRootCertificate", pem="-----BEGIN CERTIFICATE-----", status="Pending"):
    return {"certificate_id": certificate_id, "type": type_, "pem": pem, "status": status}


def test_put_auth_creates_the_auth_record(storage):
    """put_auth on a new station stores the profile, password hash and username flag given."""
    storage.charge_stations.put_auth("cs001", AUTH)
    assert storage.charge_stations.find_auth("cs001") == AUTH


def test_put_auth_replaces_the_whole_auth_record(storage):
    """A second put_auth replaces the record: a password not given again is gone and the flag resets to False."""
    storage.charge_stations.put_auth("cs001", AUTH)
    storage.charge_stations.put_auth("cs001", {"security_profile": 3})
    assert storage.charge_stations.find_auth("cs001") == {"security_profile": 3, "invalid_username_allowed": False}


def test_put_auth_with_a_none_password_stores_no_password(storage):
    """A password_hash of None is stored as no password, not as a null one."""
    storage.charge_stations.put_auth("cs001", AUTH)
    storage.charge_stations.put_auth("cs001", {**AUTH, "password_hash": None})
    assert storage.charge_stations.find_auth("cs001") == {"security_profile": 2, "invalid_username_allowed": True}


def test_find_auth_returns_only_the_three_auth_keys(storage):
    """find_auth leaves out provisioning, timestamps, trigger, settings and any extra key given to put_auth."""
    storage.charge_stations.put_auth("cs001", {**AUTH, "provisioning": "Done", "cs_id": "other", "extra": 1})
    storage.charge_stations.put_trigger("cs001", {"message": "StatusNotification", "status": "Pending"})
    storage.charge_stations.merge_settings("cs001", [setting("a")])
    assert storage.charge_stations.find_auth("cs001") == AUTH


def test_find_auth_of_an_unknown_station_is_none(storage):
    """find_auth returns None for a station that was never registered, also one differing only in case."""
    register(storage, "cs001")
    assert storage.charge_stations.find_auth("cs002") is None
    assert storage.charge_stations.find_auth("CS001") is None


def test_auth_records_of_stations_are_separate(storage):
    """Registering one station does not change another's auth record."""
    storage.charge_stations.put_auth("cs001", AUTH)
    storage.charge_stations.put_auth("cs002", {"security_profile": 0})
    assert storage.charge_stations.find_auth("cs001") == AUTH


def test_merge_settings_upserts_by_name_and_keeps_the_others(storage):
    """Merging updates the named settings' value and status and leaves settings not named alone."""
    register(storage)
    storage.charge_stations.merge_settings("cs001", [setting("a", "1"), setting("b", "2")])
    storage.charge_stations.merge_settings("cs001", (s for s in [setting("b", "3", "Accepted"), setting("c", "4")]))
    assert storage.charge_stations.settings("cs001") == [
        setting("a", "1"),
        setting("b", "3", "Accepted"),
        setting("c", "4"),
    ]


def test_setting_names_are_stored_and_returned_as_given(storage):
    """Names with '.', '$', ';', '/', quotes, non-ASCII or nothing at all round-trip unchanged, values too."""
    register(storage)
    given = [setting(name, value=f"v {name} ./$;", status=name) for name in AWKWARD_NAMES]
    storage.charge_stations.merge_settings("cs001", given)
    assert storage.charge_stations.settings("cs001") == sorted(given, key=lambda s: s["name"])


def test_merge_settings_last_duplicate_in_one_call_wins(storage):
    """When one call names a setting twice, the later value and status are stored."""
    register(storage)
    storage.charge_stations.merge_settings(
        "cs001", [setting("a", "first"), setting("b"), setting("a", "last", "Rejected")]
    )
    assert storage.charge_stations.settings("cs001") == [setting("a", "last", "Rejected"), setting("b")]


def test_settings_are_ordered_by_name_in_code_point_order(storage):
    """settings() sorts names by code point: digits, upper case, lower case, then non-ASCII."""
    register(storage)
    storage.charge_stations.merge_settings("cs001", [setting(name) for name in CODE_POINT_KEYS])
    assert [s["name"] for s in storage.charge_stations.settings("cs001")] == sorted(CODE_POINT_KEYS)


def test_settings_of_a_station_without_any_is_empty(storage):
    """settings() is [] for a registered station without settings and for an unknown one."""
    register(storage)
    storage.charge_stations.merge_settings("cs001", [])
    assert storage.charge_stations.settings("cs001") == []
    assert storage.charge_stations.settings("cs002") == []


def test_settings_of_stations_stay_apart(storage):
    """Stations whose id and setting name join to the same text keep separate settings."""
    for cs_id in ("a", "a.b", 'a","b', "a/b"):
        register(storage, cs_id)
    storage.charge_stations.merge_settings("a", [setting("b.c", "1"), setting('b","c', "2"), setting("b/c", "3")])
    storage.charge_stations.merge_settings("a.b", [setting("c", "4")])
    storage.charge_stations.merge_settings('a","b', [setting("c", "5")])
    storage.charge_stations.merge_settings("a/b", [setting("c", "6")])
    assert storage.charge_stations.settings("a") == [setting('b","c', "2"), setting("b.c", "1"), setting("b/c", "3")]
    assert storage.charge_stations.settings("a.b") == [setting("c", "4")]
    assert storage.charge_stations.settings('a","b') == [setting("c", "5")]
    assert storage.charge_stations.settings("a/b") == [setting("c", "6")]


def test_merge_install_certificates_upserts_by_id_and_keeps_the_others(storage):
    """Merging replaces the named certificates' type, PEM and status and leaves others alone."""
    register(storage)
    storage.charge_stations.merge_install_certificates("cs001", [certificate("c1"), certificate("c2")])
    storage.charge_stations.merge_install_certificates(
        "cs001", [certificate("c2", "MORootCertificate", "pem 2", "Accepted"), certificate("c3")]
    )
    assert storage.charge_stations.install_certificates("cs001") == [
        certificate("c1"),
        certificate("c2", "MORootCertificate", "pem 2", "Accepted"),
        certificate("c3"),
    ]


def test_install_certificate_ids_are_stored_and_returned_as_given(storage):
    """Certificate ids with '.', '$', ';', '/', quotes or non-ASCII round-trip unchanged, in code-point order."""
    register(storage)
    given = [certificate(name, pem=f"pem {name}") for name in AWKWARD_NAMES]
    storage.charge_stations.merge_install_certificates("cs001", given)
    assert storage.charge_stations.install_certificates("cs001") == sorted(given, key=lambda c: c["certificate_id"])


def test_merge_install_certificates_last_duplicate_in_one_call_wins(storage):
    """When one call names a certificate id twice, the later certificate is stored."""
    register(storage)
    storage.charge_stations.merge_install_certificates(
        "cs001", [certificate("c1", pem="first"), certificate("c1", "CSMSRootCertificate", "last", "Rejected")]
    )
    assert storage.charge_stations.install_certificates("cs001") == [
        certificate("c1", "CSMSRootCertificate", "last", "Rejected")
    ]


def test_install_certificates_are_ordered_by_id_in_code_point_order(storage):
    """install_certificates() sorts certificate ids by code point."""
    register(storage)
    storage.charge_stations.merge_install_certificates("cs001", [certificate(key) for key in CODE_POINT_KEYS])
    ids = [c["certificate_id"] for c in storage.charge_stations.install_certificates("cs001")]
    assert ids == sorted(CODE_POINT_KEYS)


def test_install_certificates_of_stations_stay_apart(storage):
    """One station's certificates are not listed for another; a station without any has []."""
    register(storage, "cs001")
    register(storage, "cs002")
    storage.charge_stations.merge_install_certificates("cs001", [certificate("c1")])
    assert storage.charge_stations.install_certificates("cs002") == []
    assert storage.charge_stations.install_certificates("cs003") == []


def test_put_trigger_replaces_the_single_trigger(storage):
    """A station has at most one trigger: the latest put_trigger."""
    register(storage)
    assert storage.charge_stations.find_trigger("cs001") is None
    storage.charge_stations.put_trigger("cs001", {"message": "BootNotification", "status": "Pending"})
    storage.charge_stations.put_trigger("cs001", {"message": "Heartbeat", "status": "Accepted"})
    assert storage.charge_stations.find_trigger("cs001") == {"message": "Heartbeat", "status": "Accepted"}


def test_put_auth_keeps_the_trigger(storage):
    """Re-registering a station replaces its auth record but not its trigger."""
    register(storage)
    storage.charge_stations.put_trigger("cs001", {"message": "Heartbeat", "status": "Pending"})
    storage.charge_stations.put_auth("cs001", AUTH)
    assert storage.charge_stations.find_trigger("cs001") == {"message": "Heartbeat", "status": "Pending"}


def test_find_trigger_of_an_unknown_station_is_none(storage):
    """find_trigger returns None for a station that was never registered."""
    assert storage.charge_stations.find_trigger("cs404") is None


@pytest.mark.parametrize(
    ("method", "argument"),
    [
        ("merge_settings", [setting("a")]),
        ("merge_settings", []),
        ("merge_install_certificates", [certificate("c1")]),
        ("merge_install_certificates", []),
        ("put_trigger", {"message": "Heartbeat", "status": "Pending"}),
    ],
    ids=["settings", "no-settings", "certificates", "no-certificates", "trigger"],
)
def test_writes_to_an_unknown_station_raise_not_found_and_write_nothing(storage, method, argument):
    """Writing to an unregistered station raises NotFound("charge station", id), stores nothing, creates nothing."""
    register(storage, "cs001")
    with pytest.raises(NotFound) as raised:
        getattr(storage.charge_stations, method)("cs404", argument)
    assert_not_found(raised.value, "charge station", "cs404")
    assert storage.charge_stations.settings("cs404") == []
    assert storage.charge_stations.install_certificates("cs404") == []
    assert storage.charge_stations.find_trigger("cs404") is None
    assert storage.charge_stations.find_auth("cs404") is None
