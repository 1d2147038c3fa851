-- Who at the receiving organisation has taken a referral on: the `sub` of a person of
-- that organisation. Changing it bumps the referral's version like any other change.
ALTER TABLE referrals ADD COLUMN assigned_to TEXT;
CREATE INDEX referrals_by_assignee ON referrals (to_organisation, assigned_to);

-- The people of an organisation who signed in to the pages, so a referral can be handed
-- to a named colleague: the name the identity provider gave, the roles, when last seen.
CREATE TABLE staff_members (
    organisation   TEXT NOT NULL REFERENCES organisations (slug),
    sub            TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    roles          TEXT NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organisation, sub)
);
