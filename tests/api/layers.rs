//! The layers of `src/`, read from the source: no module imports another that imports it
//! back (directly or round a circle), the domain imports nothing of ours, the application
//! layer knows no HTTP, and only start-up knows the API. See docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::helpers::manifest_dir;

/// Module path (`app::referrals`) → the modules its non-test code names.
fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = manifest_dir().join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let resolve = |first: &str, second: Option<&str>| -> String {
        match second {
            Some(second) if modules.contains(&format!("{first}::{second}")) => format!("{first}::{second}"),
            _ => first.to_string(),
        }
    };
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap()
            .lines()
            .map(|line| line.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let parent = module.split("::").next().unwrap().to_string();
        let mut deps = BTreeSet::new();
        for (prefix, base) in [("crate::", None), ("super::", Some(parent.clone()))] {
            for (index, _) in code.match_indices(prefix) {
                if index > 0 && code[..index].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &code[index + prefix.len()..];
                let mut parts = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|p| !p.is_empty());
                let Some(first) = parts.next() else { continue };
                let target = match &base {
                    None => resolve(first, parts.next()),
                    // `super::x` inside `a::b` is `a::x`.
                    Some(parent) if module.contains("::") => resolve(parent, Some(first)),
                    Some(_) => continue,
                };
                if target != module {
                    deps.insert(target);
                }
            }
        }
        graph.insert(module, deps);
    }
    graph
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .filter(|p| p != "mod")
        .collect();
    parts.join("::")
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

/// A circle of modules, if any: depth-first search for a back edge.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next)
                && let Some(cycle) = visit(next, graph, path, done)
            {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_module_imports_round_a_circle() {
    let graph = dependency_graph();
    assert!(graph.len() > 40, "the source was read: {} modules", graph.len());
    assert_eq!(find_cycle(&graph), None, "files importing each other in a circle");
    let mut layers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, deps) in &graph {
        let entry = layers.entry(top(module).to_string()).or_default();
        entry.extend(deps.iter().map(|d| top(d).to_string()).filter(|d| d != top(module)));
    }
    assert_eq!(find_cycle(&layers), None, "layers importing each other in a circle");
}

#[test]
fn each_layer_imports_only_what_it_may() {
    let graph = dependency_graph();
    let mut problems = Vec::new();
    for (module, deps) in &graph {
        let layer = top(module);
        for dep in deps.iter().map(|d| top(d)) {
            let allowed = match layer {
                // Pure: rules that take data and return decisions.
                "domain" => dep == "domain",
                // Rows and queries, converted to domain types.
                "db" => matches!(dep, "db" | "domain" | "crypto"),
                // The use cases: no HTTP, no adapter.
                "app" => matches!(dep, "app" | "db" | "domain" | "crypto" | "notify" | "config"),
                _ => true,
            };
            // Only start-up and the command line wire the adapters in. The web pages read
            // their forms with the API's parsers and run use cases through its `Context`,
            // so a form post and an API call meet the same rules.
            let api_from_outside = dep == "api" && !matches!(layer, "api" | "web" | "startup" | "cli" | "bench");
            let web_from_outside = dep == "web" && !matches!(layer, "web" | "startup");
            if !allowed || api_from_outside || web_from_outside {
                problems.push(format!("{module} imports {dep}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
