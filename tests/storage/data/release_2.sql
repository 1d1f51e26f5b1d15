BEGIN TRANSACTION;
CREATE TABLE certificates (
        hash TEXT PRIMARY KEY NOT NULL,
        pem TEXT
    );
CREATE TABLE charge_station_install_certificates (
        cs_id TEXT NOT NULL,
        certificate_id TEXT NOT NULL,
        type TEXT,
        pem TEXT,
        status TEXT,
        PRIMARY KEY (cs_id, certificate_id)
    );
CREATE TABLE charge_station_settings (
        cs_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT,
        status TEXT,
        PRIMARY KEY (cs_id, name)
    ) WITHOUT ROWID;
CREATE TABLE charge_stations (
        cs_id TEXT PRIMARY KEY NOT NULL,
        security_profile INTEGER,
        password_hash TEXT,
        invalid_username_allowed INTEGER,
        provisioning TEXT,
        updated_at INTEGER,
        trigger_message TEXT,
        trigger_status TEXT
    ) WITHOUT ROWID;
CREATE TABLE location_pushes (
        id TEXT PRIMARY KEY NOT NULL,
        party TEXT NOT NULL,
        location_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        lease_until INTEGER NOT NULL,
        lease TEXT,
        last_error TEXT
    );
CREATE TABLE locations (
        id TEXT PRIMARY KEY NOT NULL,
        last_updated INTEGER,
        document TEXT NOT NULL
    );
INSERT INTO "locations" VALUES('loc1',1796162689195,'{"id": "loc1", "country_code": "GB", "party_id": "TWK", "address": "1 Main Street", "city": "London", "country": "GBR", "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"}, "evses": [{"uid": "cs001-1", "evse_id": "GB*TWK*E001*1", "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE", "max_voltage": 400, "max_amperage": 32, "last_updated": {"$date": "2026-12-01T22:04:49.195Z"}}], "status": "UNKNOWN", "last_updated": {"$date": "2026-12-01T22:04:49.195Z"}}], "time_zone": "Europe/London", "last_updated": {"$date": "2026-12-01T22:04:49.195Z"}}');
CREATE TABLE ocpi_parties (
        key TEXT PRIMARY KEY NOT NULL,
        inbound_token_hash TEXT NOT NULL UNIQUE,
        document TEXT NOT NULL
    );
INSERT INTO "ocpi_parties" VALUES('NL*EMS','354adddc64077c9fb9b6c53db5bd0c222c84d9b827db54e31a6101a2f2f1f7dc','{"key": "NL*EMS", "roles": [{"role": "EMSP", "country_code": "NL", "party_id": "EMS", "business_details": {"name": "eMSP", "logo": {"url": "https://e.test/l.png", "category": "OPERATOR", "type": "png"}}}], "version": "2.2.1", "versions_url": "http://emsp.test/ocpi/versions", "endpoints": [{"identifier": "locations", "role": "RECEIVER", "url": "http://emsp.test/ocpi/emsp/locations"}], "outbound_token": "release-2-outbound-token", "token_encoding": "base64", "inbound_token": "release-2-inbound-token-c", "inbound_token_hash": "354adddc64077c9fb9b6c53db5bd0c222c84d9b827db54e31a6101a2f2f1f7dc", "registered_at": {"$date": "2026-01-02T03:04:05.678Z"}, "last_push": {"location_id": "loc1", "at": {"$date": "2026-01-03T00:00:00Z"}, "ok": true}}');
CREATE TABLE registrations (
        token TEXT PRIMARY KEY NOT NULL,
        status TEXT
    ) WITHOUT ROWID;
INSERT INTO "registrations" VALUES('release-2-token-a-pending','PENDING');
INSERT INTO "registrations" VALUES('release-2-token-a-registered','REGISTERED');
CREATE TABLE tokens (
        uid TEXT PRIMARY KEY NOT NULL,
        country_code TEXT,
        party_id TEXT,
        type TEXT,
        contract_id TEXT,
        issuer TEXT,
        valid INTEGER,
        cache_mode TEXT,
        last_updated INTEGER,
        visual_number TEXT,
        group_id TEXT,
        language_code TEXT
    ) WITHOUT ROWID;
INSERT INTO "tokens" VALUES('DEADBEEF','GB','TWK','RFID','GBTWK012345678V','Thoughtworks',1,'ALWAYS',1796162689192,NULL,NULL,NULL);
INSERT INTO "tokens" VALUES('R9CARD','FR','AT9','RFID','GBTWK012345678V','Thoughtworks',0,'ALWAYS',1796162689192,NULL,NULL,NULL);
INSERT INTO "tokens" VALUES('r9card','FR','AT9','RFID','GBTWK012345678V','Thoughtworks',1,'ALWAYS',1796162689192,NULL,NULL,NULL);
CREATE INDEX locations_by_last_updated ON locations (last_updated, id);
CREATE INDEX location_pushes_by_due_at ON location_pushes (due_at, id);
COMMIT;
PRAGMA user_version = 2;
