"""One typed settings object, read from the environment.

Every variable is listed in README.md with its default. Names are the field names
upper-cased (``database_url`` -> ``DATABASE_URL``).
"""

from __future__ import annotations

import os
from functools import lru_cache

import msgspec


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    # service
    host: str = "127.0.0.1"
    port: int = 8000
    environment: str = "development"  # development | test | production
    log_level: str = "INFO"
    public_base_url: str = "http://127.0.0.1:8000"
    # bearer token /metrics requires (Prometheus' `authorization: {credentials: ...}`);
    # empty: /metrics is open (keep it off the public network then)
    metrics_token: str = ""

    # data stores
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/city"
    db_pool_size: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    # prefix of every Redis key and of the arq queue name (several deployments, one Redis)
    redis_prefix: str = "city"

    # secrets (development defaults; production must set them)
    secret_key: str = "dev-secret-change-me"
    citizen_id_hash_key: str = "dev-citizen-id-key-change-me"
    # seals secrets the app must read back (agencies' signing secrets, staff TOTP seeds):
    # AES-256-GCM under a key derived from this one per purpose (app/core/sealed.py)
    data_encryption_key: str = "dev-data-encryption-key-change-me"

    # tokens
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_days: int = 30
    console_session_hours: int = 10  # a web console session lasts a working day
    # map tiles for the console's map ({z}/{x}/{y} URL); empty: ward outlines only
    console_tile_url: str = ""

    # one-time codes
    otp_ttl_seconds: int = 300
    # wrong tries at one code from one client address; the code stays alive for others
    otp_max_attempts: int = 5
    # wrong tries at one code from all addresses together (a distributed guesser): spent
    otp_max_attempts_per_code: int = 20
    # code requests per phone from one client address (a stranger only uses up their own)
    otp_rate_per_phone: str = "3/10minutes;10/day"
    # code requests per phone from all addresses together (SMS flooding of one phone)
    otp_rate_per_phone_all_addresses: str = "10/hour;30/day"
    otp_rate_per_ip: str = "20/10minutes"
    # wrong codes per client address, whatever the phone (CGNAT: failures only count)
    otp_verify_failures_per_ip: str = "30/10minutes;200/day"
    # staff password sign-in counts failures only, and slows down instead of locking:
    # after STAFF_LOGIN_FREE_FAILURES failures for an account from one address in the
    # window, that address waits 1, 2, 4 ... up to STAFF_LOGIN_MAX_DELAY_SECONDS after its
    # last failure; past STAFF_LOGIN_ACCOUNT_FAILURES failures from all addresses (an
    # attack) an address is slowed from its first failure. An address with no failure
    # is never slowed, so the right password from the office still works.
    staff_login_failure_window_seconds: int = 900
    staff_login_free_failures: int = 3
    staff_login_account_failures: int = 20
    staff_login_max_delay_seconds: int = 60
    # failures per client address across all accounts (generous: offices share one NAT IP)
    staff_login_rate_per_ip: str = "300/15minutes"
    # ---- staff second factor (issue 22 item 3): TOTP (RFC 6238). Roles whose accounts
    # must use it (comma-separated; empty: nobody must, anyone may); they cannot get a
    # session with a password alone and are sent to enrolment until they have one
    staff_totp_required_roles: str = "manager,admin"
    staff_totp_issuer: str = "iCity"  # the name authenticator apps show beside the account
    # the step between password and code (a challenge token) lives this long
    staff_second_factor_challenge_seconds: int = 300
    # wrong codes (TOTP or recovery) per account and per client address; past either a 429
    # with Retry-After (only failures count: the right code is never slowed by others')
    staff_second_factor_failures_per_account: str = "10/15minutes;50/day"
    staff_second_factor_failures_per_ip: str = "30/15minutes;300/day"
    # proxies whose X-Forwarded-For is believed (comma-separated addresses or CIDRs); empty:
    # the TCP peer is the client. Rate limits and the audit log use the result.
    trusted_proxies: str = ""
    sms_backend: str = "log"  # log | http
    sms_http_url: str = ""

    # identity provider (VNeID-style OpenID Connect)
    oidc_issuer: str = ""
    oidc_client_id: str = "city-app"
    oidc_client_secret: str = ""
    oidc_redirect_uri: str = "http://127.0.0.1:8000/api/v1/auth/vneid/callback"

    # photo storage: local disk unless an S3/MinIO endpoint is set
    storage_dir: str = "var/storage"
    s3_endpoint: str = ""  # host:port, e.g. minio:9000
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "city-photos"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    signed_url_ttl_seconds: int = 600

    # reports and photos
    photo_max_bytes: int = 15_000_000
    photo_max_megapixels: int = 50
    photos_per_report: int = 6
    photo_unattached_ttl_hours: int = 24
    photo_geotag_far_meters: int = 500
    photo_stale_days: int = 7
    # photo redaction (issue 22 item 5): keep the unredacted copy for the unit's staff
    # (true), or delete it once the redacted copies are committed (false)
    photo_redaction_keeps_original: bool = True
    # per resident, in the `limits` syntax; over it: 429 with Retry-After
    report_rate_per_resident: str = "10/hour;30/day"
    photo_rate_per_resident: str = "60/hour;200/day"
    # resumable photo uploads, tus 1.0 (issue 24 item 3; app/uploads)
    upload_open_per_resident: int = 5  # unfinished uploads one resident may hold (429 beyond)
    upload_ttl_hours: int = 24  # an unfinished upload expires (410, then purged)
    upload_piece_bytes: int = 262_144  # a PATCH body is committed in pieces of this size
    upload_lease_seconds: int = 10  # a PATCH that stopped writing frees the upload after this

    # routing, deadlines and satisfaction (workers)
    office_opens: str = "08:00"  # local time, Asia/Ho_Chi_Minh
    office_closes: str = "17:00"
    reminder_share: float = 0.75  # remind the unit when this share of the time has passed
    escalate_after_working_days: int = 2  # overdue this long → parent unit / dispatcher
    max_transfers: int = 3  # after this many transfers an item goes to the dispatcher
    # working days one extension may add to a deadline; 0: the category's own allowance
    max_extension_working_days: int = 0
    rating_window_days: int = 7  # no rating by then → closed as "not rated"
    reconcile_after_seconds: int = 60  # state older than this without its job gets one
    routing_batch_size: int = 500
    worker_job_timeout_seconds: int = 120  # a killed worker's job is retried this + 10 s later

    # push: log unless Firebase credentials are set
    firebase_credentials_file: str = ""
    fcm_url: str = ""  # override of FCM's send URL template (tests, proxies)
    fcm_token_uri: str = ""  # override of the service account's token_uri
    # CA bundle (PEM) to trust for FCM and its token endpoint instead of the defaults
    # (system store + SSL_CERT_FILE/SSL_CERT_DIR, or certifi): a TLS-inspecting proxy's CA
    fcm_ca_file: str = ""

    # dossier file imports (issue 19 item 2): an agency's NDJSON/CSV export; over the size
    # a 413; lines applied DOSSIER_IMPORT_CHUNK_LINES per transaction; a job works at most
    # DOSSIER_IMPORT_JOB_SECONDS, then hands the rest to the next job
    dossier_import_max_bytes: int = 200_000_000
    dossier_import_chunk_lines: int = 500
    dossier_import_job_seconds: int = 30
    # runs of one import that may start without committing a chunk (crashes, a killed
    # worker) before it is marked failed; its stored file is deleted this many days after
    # it finished (the daily purge, which also deletes stored files no import names)
    dossier_import_max_attempts: int = 5
    dossier_import_file_retention_days: int = 30

    # health book (issue 20): the FHIR identifier system whose value is the citizen ID
    # (CCCD) on the health system's Patient resources; set it to the system URI the
    # city's health-record system uses. Patients without one are reported, not imported.
    health_citizen_id_system: str = "urn:vn:cccd"
    health_import_dir: str = "var/health-imports"  # Bulk Data downloads land here
    health_import_batch_lines: int = 20000  # lines per committed batch (the resume point)
    health_import_slice_seconds: int = 60  # one job run's share, then it re-enqueues itself
    health_import_stale_seconds: int = 120  # an unfinished job not moving: resumed
    health_bundle_max_bytes: int = 67_108_864  # a Bundle file is read whole (NDJSON streams)
    # FHIR Bulk Data ($export) source: the kick-off URL, e.g.
    # https://fhir.example/fhir/Patient/$export; empty: no Bulk Data pulls
    health_bulk_export_url: str = ""
    health_bulk_token: str = ""  # bearer token sent to the export and its files
    health_bulk_timeout_seconds: int = 3600  # an export not finished by then fails
    health_bulk_max_wait_seconds: int = 120  # the longest Retry-After honoured as given

    # dossiers, residents and the public lookup (issue 19 items 5-6), in the `limits`
    # syntax; over it: 429 with Retry-After. Linking by code + citizen ID counts every
    # attempt per resident and per client address (slows guessing of IDs); the public
    # lookup by code counts per client address (slows enumeration of codes), and its
    # answer (no personal data) may be cached this long by browsers and proxies
    dossier_link_rate_per_user: str = "10/10minutes;30/day"
    dossier_link_rate_per_ip: str = "30/10minutes;200/day"
    dossier_lookup_rate_per_ip: str = "60/minute;1000/hour"
    dossier_lookup_max_age_seconds: int = 60

    # agency ingest (issue 19 items 1, 3): a signed batch's largest body (at most 500
    # events; over it a 413 before anything is read), and how long the secrets valid
    # before a new one is issued stay valid (the agency's switch-over window)
    ingest_max_body_bytes: int = 4_194_304
    agency_secret_overlap_hours: int = 24
    # failed ingest sign-ins (401s), in the `limits` syntax (app/dossiers/ingest.py
    # FailedSignIns): per client address, whatever the agency (past it: 429 before the
    # body is read); and per agency code from all addresses (past it, only addresses that
    # failed for that code themselves get 429: the agency's own system is never slowed)
    ingest_auth_failures_per_ip: str = "30/minute;300/hour"
    ingest_auth_failures_per_agency: str = "100/10minutes"

    # ---- Open311 write side (issue 21, helper O2): each third-party app's key may file
    # this often (the `limits` syntax; over it a 429 in the spec's error shape)
    open311_key_rate: str = "30/minute;2000/day"
    # a filing's media_url is fetched by a job: at most this long in all, this many tries
    # (then the failure is on the report's timeline), at most 3 redirects, the photo
    # upload's size cap. Private, loopback and link-local addresses are refused unless
    # this is true (tests only; production refuses to start with it)
    open311_media_timeout_seconds: int = 20
    open311_media_max_attempts: int = 3
    open311_media_allow_private: bool = False
    # a third-party filing's submitter contact (name, phone, email, device and account
    # ids) is erased this long after its report ended (closed, rejected, duplicate, …)
    open311_contact_retention_days: int = 90

    # ---- Open311 read side (issue 21, helper O1): the one jurisdiction served (a request's
    # jurisdiction_id, when given, must be this, else 404); the endpoint's public URL as
    # the discovery document names it (empty: built from the request, e.g. behind a proxy
    # that rewrites the host set it); the address developers write to for help and keys
    open311_jurisdiction_id: str = "hanoi.gov.vn"
    open311_base_url: str = ""
    open311_contact_email: str = "open311@hanoi.gov.vn"

    # ---- reporting without a map, open data (issue 22 items 7, 4; helper H2): the public
    # address search counts per client address (the `limits` syntax; over it a 429)
    address_search_rate_per_ip: str = "60/minute;1000/hour"
    # open data: positions rounded to this many decimals (3 ≈ 100 m), the licence stated
    # in every answer and file, the publisher named there, the longest query period
    open_data_position_decimals: int = 3
    open_data_licence: str = "CC BY 4.0"
    open_data_licence_url: str = "https://creativecommons.org/licenses/by/4.0/"
    open_data_publisher: str = "UBND Thành phố Hà Nội"
    open_data_max_period_days: int = 92
    # days a stopped worker's missed daily files are still published when it is back
    open_data_catch_up_days: int = 14

    # sync on app open (issue 24 item 2): change rows older than this are purged, and a
    # cursor from before the purge answers 410 (start over without a cursor)
    sync_retention_days: int = 30
    sync_page_default: int = 100  # items per sync page when the app names no limit
    sync_page_max: int = 500

    # demo data
    load_demo_data: bool = True

    @property
    def is_test(self) -> bool:
        return self.environment == "test"

    @property
    def queue_name(self) -> str:
        """The one arq queue, under ``REDIS_PREFIX``: the API enqueues to it (and names job
        ids by it), workers read it, the health check counts it."""
        return f"{self.redis_prefix}:queue"


def _from_env() -> Settings:
    raw: dict[str, str] = {}
    for field in msgspec.structs.fields(Settings):
        value = os.environ.get(field.name.upper())
        if value is not None:
            raw[field.name] = value
    return msgspec.convert(raw, Settings, strict=False)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return _from_env()
