-- A bridge state database as made by 0001_initial at commit 92485ba, before that migration was edited
-- (tests/test_migrations.py). Made with that commit's migration, plus a feed, two entries and a queued post.
BEGIN TRANSACTION;
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
INSERT INTO "_sqlite_migrations" VALUES(1,'bridge','0001_initial','2026-11-21 11:40:00.000000+00:00');
CREATE TABLE accounts (
            name TEXT PRIMARY KEY,
            paused_reason TEXT,              -- set while the credentials do not work
            paused_at REAL,
            paused_fingerprint TEXT,         -- hash of the credential that failed: a new one un-pauses
            session TEXT,                    -- Bluesky session string; secret, the file is 0600
            session_updated_at REAL,
            limits TEXT,                     -- instance limits as JSON (Mastodon)
            limits_fetched_at REAL,
            deferred_until REAL              -- rate limited until
        );
INSERT INTO "accounts" VALUES('masto',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE TABLE aliases (
            alias TEXT NOT NULL,             -- canonical link without scheme, www. and trailing slash
            feed TEXT NOT NULL,
            entry_id INTEGER NOT NULL REFERENCES entries(id),
            PRIMARY KEY (feed, alias)
        ) WITHOUT ROWID;
INSERT INTO "aliases" VALUES('blog.example.com/posts/1','blog',1);
INSERT INTO "aliases" VALUES('blog.example.com/posts/2','blog',2);
CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entries(id),
            account TEXT NOT NULL,
            state TEXT NOT NULL,             -- pending / sending / posted / failed
            kind TEXT NOT NULL DEFAULT 'new',  -- new / backfill / update
            payload TEXT,                    -- the rendered payload, JSON, fixed before the first attempt
            idempotency_key TEXT NOT NULL,   -- Mastodon Idempotency-Key
            rkey TEXT,                       -- Bluesky record key (TID), chosen once
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            remote_id TEXT,
            remote_url TEXT,
            created_at REAL NOT NULL,
            sending_at REAL,
            posted_at REAL,
            UNIQUE (entry_id, account)
        );
INSERT INTO "deliveries" VALUES(1,2,'masto','pending','new',NULL,'old-schema-key-2',NULL,0,1795000000.0,NULL,NULL,NULL,1795000000.0,NULL,NULL);
CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            feed TEXT NOT NULL,
            key TEXT NOT NULL,
            link TEXT,
            status TEXT NOT NULL,            -- baseline / new / too_old / duplicate / backfill
            content_hash TEXT NOT NULL,
            published REAL,
            first_seen_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            data TEXT NOT NULL,              -- Entry.to_dict() as JSON
            UNIQUE (feed, key)
        );
INSERT INTO "entries" VALUES(1,'blog','post-1','http://blog.example.com/posts/1','baseline','old-hash',1794990000.0,1795000000.0,1795000000.0,'{"key": "post-1", "link": "http://blog.example.com/posts/1", "title": "First post", "summary_html": "<p>About First post.</p>", "content_html": null, "published": "2026-11-18T07:40:00+00:00", "updated": null, "categories": [], "language": "en", "authors": [], "images": []}');
INSERT INTO "entries" VALUES(2,'blog','post-2','http://blog.example.com/posts/2','new','old-hash',1794990000.0,1795000000.0,1795000000.0,'{"key": "post-2", "link": "http://blog.example.com/posts/2", "title": "Second post", "summary_html": "<p>About Second post.</p>", "content_html": null, "published": "2026-11-18T07:40:00+00:00", "updated": null, "categories": [], "language": "en", "authors": [], "images": []}');
CREATE TABLE feeds (
            name TEXT PRIMARY KEY,
            configured_url TEXT NOT NULL,
            url TEXT NOT NULL,               -- where we poll now: follows 301/308
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            title TEXT,
            baseline_done INTEGER NOT NULL DEFAULT 0,
            gone INTEGER NOT NULL DEFAULT 0,
            last_checked_at REAL,
            last_success_at REAL,
            last_status INTEGER,
            last_outcome TEXT,               -- new / unchanged / not-modified / error / gone
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            next_poll_at REAL,
            ttl_seconds REAL
        );
INSERT INTO "feeds" VALUES('blog','http://old.example/feed.xml','http://old.example/feed.xml',NULL,NULL,NULL,NULL,1,0,1795000000.0,1795000000.0,200,'new',NULL,0,1795000600.0,NULL);
CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");
CREATE INDEX entries_feed_published ON entries (feed, published);
CREATE INDEX aliases_alias ON aliases (alias);
CREATE INDEX deliveries_due ON deliveries (account, state, next_attempt_at, id);
CREATE INDEX deliveries_posted ON deliveries (account, posted_at);
COMMIT;
