//! Documents that must not drift from the code.

use crate::helpers::manifest_dir;

#[test]
fn workflow_doc_matches_transition_table() {
    let doc = std::fs::read_to_string(manifest_dir().join("docs/workflow.md")).expect("docs/workflow.md");
    let start = doc.find("```mermaid\n").expect("a ```mermaid block") + "```mermaid\n".len();
    let end = start + doc[start..].find("```").expect("closing fence");
    assert_eq!(
        &doc[start..end],
        nrm::domain::referral::mermaid(),
        "docs/workflow.md's diagram differs from the transition table: paste the output of mermaid() into it"
    );
}
