//! The audit chain: the canonical encoding of an entry, its SHA-256 hash, and verification.
//!
//! Each entry stores the previous entry's hash and its own hash over a canonical encoding
//! of all its fields, including its sequence number and the previous hash, so editing,
//! deleting or reordering any entry breaks the chain from that entry on. Pure: entries come
//! in, a verdict goes out.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit entry's content. No personal data: actors are user ids (`sub`), resources
/// are ids, actions and outcomes are codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    /// RFC 3339 with microseconds, UTC (`2024-03-14T10:00:00.000000Z`).
    pub at: String,
    pub actor_sub: String,
    pub actor_org: String,
    pub actor_roles: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub case_id: Option<String>,
    pub outcome: String,
    pub prev_hash: String,
    /// `person` or `machine`.
    pub actor_kind: String,
}

impl AuditRecord {
    /// Length-prefixed fields in a fixed order: no two different records share an encoding.
    /// A person's entry keeps the encoding it had before machine clients existed (`v1`), so
    /// chains sealed then still verify; a machine's entry is `v2`, with the kind after the
    /// roles, so turning either kind into the other breaks the hash.
    pub fn canonical(&self) -> String {
        let person = self.actor_kind == "person";
        let kind: &[&str] = if person { &[] } else { &[&self.actor_kind] };
        let fields: [&[&str]; 3] = [
            &[
                &self.seq.to_string(),
                &self.at,
                &self.actor_sub,
                &self.actor_org,
                &self.actor_roles,
            ],
            kind,
            &[
                &self.action,
                &self.resource_type,
                &self.resource_id,
                self.case_id.as_deref().unwrap_or("-"),
                &self.outcome,
                &self.prev_hash,
            ],
        ];
        let mut out = String::from(if person { "nrm-audit-v1" } else { "nrm-audit-v2" });
        for field in fields.into_iter().flatten() {
            out.push('|');
            out.push_str(&field.len().to_string());
            out.push(':');
            out.push_str(field);
        }
        out
    }

    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.canonical().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The outcome of verifying a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub valid: bool,
    pub entries: u64,
    /// The first entry whose sequence, link or hash does not hold.
    pub first_invalid_seq: Option<i64>,
    /// Entries written but not yet sealed into the chain when the walk ended: those committed
    /// while it ran.
    pub unsealed: u64,
    /// Entries that had waited for their seal for longer than sealing allows when the
    /// verification began (it sealed them): more than zero means no sealer is running, an
    /// alarm even when the chain is valid.
    pub overdue_unsealed: u64,
    /// When the longest-waiting of those was written.
    pub oldest_overdue_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Verification {
    pub fn with_overdue_seals(mut self, overdue: u64, oldest: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        self.overdue_unsealed = overdue;
        self.oldest_overdue_at = if overdue > 0 { oldest } else { None };
        self
    }

    /// Whether the sealer has fallen behind (or stopped).
    pub fn sealing_overdue(&self) -> bool {
        self.overdue_unsealed > 0
    }
}

/// Verifies entries fed in sequence order, in batches. Call `finish` with the stored chain
/// head, which catches entries cut off the end.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    entries: u64,
    first_invalid: Option<i64>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
            entries: 0,
            first_invalid: None,
        }
    }
}

impl ChainVerifier {
    /// Checks one stored entry: its position, its link to the previous one, its own hash.
    pub fn check(&mut self, record: &AuditRecord, stored_hash: &str) {
        self.entries += 1;
        if self.first_invalid.is_some() {
            return;
        }
        let intact =
            record.seq == self.expected_seq && record.prev_hash == self.prev_hash && record.hash() == stored_hash;
        if !intact {
            // A gap (deleted entry) is reported at the missing position.
            self.first_invalid = Some(record.seq.min(self.expected_seq));
            return;
        }
        self.expected_seq += 1;
        self.prev_hash = stored_hash.to_string();
    }

    pub fn finish(self, head_seq: i64, head_hash: &str, unsealed: u64) -> Verification {
        let mut first_invalid = self.first_invalid;
        if first_invalid.is_none() && (head_seq != self.expected_seq - 1 || head_hash != self.prev_hash) {
            // Entries after the last one present were removed.
            first_invalid = Some(self.expected_seq);
        }
        Verification {
            valid: first_invalid.is_none(),
            entries: self.entries,
            first_invalid_seq: first_invalid,
            unsealed,
            overdue_unsealed: 0,
            oldest_overdue_at: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(AuditRecord, String)> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let record = AuditRecord {
                    seq,
                    at: format!("2024-01-01T00:00:{:02}.000000Z", seq % 60),
                    actor_sub: "cw".into(),
                    actor_org: "fier".into(),
                    actor_roles: "caseworker".into(),
                    action: "case.create".into(),
                    resource_type: "case".into(),
                    resource_id: format!("id-{seq}"),
                    case_id: Some(format!("id-{seq}")),
                    outcome: "ok".into(),
                    prev_hash: prev.clone(),
                    actor_kind: "person".into(),
                };
                let hash = record.hash();
                prev = hash.clone();
                (record, hash)
            })
            .collect()
    }

    fn verify(entries: &[(AuditRecord, String)], head_seq: i64, head_hash: &str) -> Verification {
        let mut verifier = ChainVerifier::default();
        for (record, hash) in entries {
            verifier.check(record, hash);
        }
        verifier.finish(head_seq, head_hash, 0)
    }

    #[test]
    fn intact_chain_is_valid() {
        let entries = chain(5);
        let head = entries[4].1.clone();
        assert_eq!(
            verify(&entries, 5, &head),
            Verification {
                valid: true,
                entries: 5,
                first_invalid_seq: None,
                unsealed: 0,
                overdue_unsealed: 0,
                oldest_overdue_at: None,
            }
        );
        assert!(verify(&[], 0, GENESIS_HASH).valid);
    }

    #[test]
    fn edit_delete_reorder_and_truncation_are_pinpointed() {
        let entries = chain(6);
        let head = entries[5].1.clone();
        let mut edited = entries.clone();
        edited[2].0.action = "case.delete".into();
        assert_eq!(verify(&edited, 6, &head).first_invalid_seq, Some(3));
        let mut rehashed = entries.clone();
        rehashed[3].0.outcome = "denied".into();
        rehashed[3].1 = rehashed[3].0.hash();
        assert_eq!(
            verify(&rehashed, 6, &head).first_invalid_seq,
            Some(5),
            "a recomputed hash breaks the next link"
        );
        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, 6, &head).first_invalid_seq, Some(2));
        let mut reordered = entries.clone();
        reordered.swap(3, 4);
        assert_eq!(verify(&reordered, 6, &head).first_invalid_seq, Some(4));
        assert_eq!(
            verify(&entries[..4], 6, &head).first_invalid_seq,
            Some(5),
            "tail cut off"
        );
    }

    #[test]
    fn a_persons_entry_keeps_its_old_hash_and_the_kind_cannot_be_swapped() {
        let (person, _) = chain(1).remove(0);
        // Sealed before machine clients existed: the v1 encoding, byte for byte.
        let v1 = format!(
            "nrm-audit-v1|1:1|27:2024-01-01T00:00:01.000000Z|2:cw|4:fier|10:caseworker|11:case.create|4:case|4:id-1|4:id-1|2:ok|64:{GENESIS_HASH}"
        );
        assert_eq!(person.canonical(), v1);
        let machine = AuditRecord {
            actor_kind: "machine".into(),
            ..person.clone()
        };
        assert!(machine.canonical().starts_with("nrm-audit-v2|"));
        assert!(machine.canonical().contains("|7:machine|"));
        assert_ne!(machine.hash(), person.hash());
    }

    #[test]
    fn encoding_is_unambiguous() {
        let (a, _) = chain(1).remove(0);
        let mut b = a.clone();
        b.actor_sub = "c".into();
        b.actor_org = "wfier".into();
        assert_ne!(a.canonical(), b.canonical());
    }
}
