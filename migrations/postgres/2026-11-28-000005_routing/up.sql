-- Routing: the case facts the rules need, live capacity per service, and referrals sent
-- against the directory's eligibility with a caseworker's reason.
ALTER TABLE cases ADD COLUMN last_incident_date DATE;
ALTER TABLE cases ADD COLUMN needs TEXT NOT NULL DEFAULT '[]';   -- JSON array of need codes
ALTER TABLE cases ADD COLUMN unaccompanied BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE referrals ADD COLUMN eligibility_override TEXT;

-- Places free per capacity-managed service, as the organisation's intake last reported.
CREATE TABLE organisation_capacity (
    organisation  TEXT NOT NULL REFERENCES organisations (slug),
    service       TEXT NOT NULL,
    places_free   INTEGER NOT NULL,
    updated_by    TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organisation, service)
);
