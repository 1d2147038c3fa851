//! The theme's colours meet WCAG 2.1 AA, read from `web/static/theme.css` itself: each pair
//! of custom properties that the pages put text (or a control's edge, or the focus ring) on
//! is resolved through its `var(--other)` references to a hex colour and its contrast ratio
//! checked, 4.5:1 for text and 3:1 for component boundaries and focus indicators.
//! `web/static/app.css` and `web/static/public.css` may not write colours of their own, only
//! use the theme's tokens.
//! Uses only std, so it also runs alone: `rustc --edition 2024 --test tests/api/theme.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Normal text (WCAG 2.1 SC 1.4.3).
const TEXT: f64 = 4.5;
/// Boundaries of controls, state indicators and focus rings (SC 1.4.11).
const UI: f64 = 3.0;

/// (foreground, background, minimum ratio): every pair the pages show text or a control on.
#[rustfmt::skip]
const PAIRS: &[(&str, &str, f64)] = &[
    // Text on the page.
    ("--utrecht-document-color", "--utrecht-document-background-color", TEXT),
    ("--utrecht-page-body-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-paragraph-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-paragraph-small-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-heading-1-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-heading-2-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-heading-3-color", "--utrecht-page-body-background-color", TEXT),
    ("--nrm-muted-color", "--utrecht-page-body-background-color", TEXT),
    ("--nrm-timeline-meta-color", "--utrecht-page-body-background-color", TEXT),
    ("--nrm-facts-term-color", "--utrecht-page-body-background-color", TEXT),
    ("--nrm-facts-description-color", "--utrecht-page-body-background-color", TEXT),
    // Links, in every state.
    ("--utrecht-link-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-link-visited-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-link-hover-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-link-active-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-link-focus-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-link-color", "--utrecht-alert-info-background-color", TEXT),
    // Header, navigation, footer, skip link.
    ("--utrecht-page-header-color", "--utrecht-page-header-background-color", TEXT),
    ("--nrm-muted-color", "--utrecht-page-header-background-color", TEXT),
    ("--nrm-nav-color", "--nrm-nav-background-color", TEXT),
    ("--utrecht-page-footer-color", "--utrecht-page-footer-background-color", TEXT),
    ("--utrecht-skip-link-color", "--utrecht-skip-link-background-color", TEXT),
    // Buttons (disabled buttons are exempt from the criterion).
    ("--utrecht-button-primary-action-color", "--utrecht-button-primary-action-background-color", TEXT),
    ("--utrecht-button-primary-action-hover-color", "--utrecht-button-primary-action-hover-background-color", TEXT),
    ("--utrecht-button-primary-action-focus-color", "--utrecht-button-primary-action-focus-background-color", TEXT),
    ("--utrecht-button-primary-action-active-color", "--utrecht-button-primary-action-active-background-color", TEXT),
    ("--utrecht-button-secondary-action-color", "--utrecht-button-secondary-action-background-color", TEXT),
    ("--utrecht-button-secondary-action-hover-color", "--utrecht-button-secondary-action-hover-background-color", TEXT),
    ("--utrecht-button-secondary-action-focus-color", "--utrecht-button-secondary-action-focus-background-color", TEXT),
    ("--utrecht-button-secondary-action-active-color", "--utrecht-button-secondary-action-active-background-color", TEXT),
    // The subtle button's own background is transparent: its text stands on the page.
    ("--utrecht-button-subtle-color", "--utrecht-page-header-background-color", TEXT),
    ("--utrecht-button-subtle-hover-color", "--utrecht-button-subtle-hover-background-color", TEXT),
    ("--utrecht-button-subtle-focus-color", "--utrecht-button-subtle-focus-background-color", TEXT),
    ("--utrecht-button-subtle-active-color", "--utrecht-button-subtle-active-background-color", TEXT),
    // Forms.
    ("--utrecht-form-label-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-form-fieldset-legend-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-form-field-description-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-form-field-error-message-color", "--utrecht-page-body-background-color", TEXT),
    ("--utrecht-form-control-color", "--utrecht-form-control-background-color", TEXT),
    ("--utrecht-form-control-placeholder-color", "--utrecht-form-control-background-color", TEXT),
    ("--utrecht-form-control-invalid-color", "--utrecht-form-control-invalid-background-color", TEXT),
    ("--utrecht-form-control-focus-color", "--utrecht-form-control-focus-background-color", TEXT),
    ("--utrecht-form-control-read-only-color", "--utrecht-form-control-read-only-background-color", TEXT),
    ("--nrm-error-summary-color", "--nrm-error-summary-background-color", TEXT),
    ("--utrecht-form-field-error-message-color", "--nrm-error-summary-background-color", TEXT),
    // Alerts.
    ("--utrecht-alert-info-color", "--utrecht-alert-info-background-color", TEXT),
    ("--utrecht-alert-warning-color", "--utrecht-alert-warning-background-color", TEXT),
    ("--utrecht-alert-error-color", "--utrecht-alert-error-background-color", TEXT),
    ("--utrecht-alert-ok-color", "--utrecht-alert-ok-background-color", TEXT),
    // Deadline badges.
    ("--nrm-badge-overdue-color", "--nrm-badge-overdue-background-color", TEXT),
    ("--nrm-badge-due-soon-color", "--nrm-badge-due-soon-background-color", TEXT),
    ("--nrm-badge-on-time-color", "--nrm-badge-on-time-background-color", TEXT),
    ("--nrm-badge-none-color", "--nrm-badge-none-background-color", TEXT),
    ("--utrecht-badge-color", "--utrecht-badge-background-color", TEXT),
    // Tables.
    ("--utrecht-table-header-color", "--utrecht-table-header-background-color", TEXT),
    ("--utrecht-table-header-cell-color", "--utrecht-table-header-background-color", TEXT),
    ("--utrecht-table-caption-color", "--utrecht-page-body-background-color", TEXT),
    // Print.
    ("--nrm-print-color", "--nrm-print-background-color", TEXT),
    // Focus ring, against every surface a focusable thing stands on.
    ("--utrecht-focus-outline-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-focus-outline-color", "--utrecht-page-header-background-color", UI),
    ("--utrecht-focus-outline-color", "--nrm-nav-background-color", UI),
    ("--utrecht-focus-outline-color", "--utrecht-page-footer-background-color", UI),
    ("--utrecht-focus-outline-color", "--utrecht-alert-info-background-color", UI),
    ("--utrecht-focus-outline-color", "--utrecht-focus-inverse-outline-color", UI),
    // Edges of controls and state indicators.
    ("--utrecht-form-control-border-color", "--utrecht-form-control-background-color", UI),
    ("--utrecht-form-control-border-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-form-control-invalid-border-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-form-field-invalid-border-inline-start-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-checkbox-border-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-checkbox-checked-background-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-radio-button-border-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-radio-button-checked-color", "--utrecht-radio-button-checked-background-color", UI),
    ("--utrecht-radio-button-invalid-border-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-button-primary-action-background-color", "--utrecht-page-body-background-color", UI),
    ("--utrecht-button-secondary-action-border-color", "--utrecht-page-body-background-color", UI),
    ("--nrm-nav-current-border-color", "--nrm-nav-background-color", UI),
    ("--nrm-timeline-dot-color", "--utrecht-page-body-background-color", UI),
];

fn web_dir() -> PathBuf {
    // Cargo sets CARGO_MANIFEST_DIR; run alone with plain rustc, the working directory is
    // taken to be the repository root.
    let root = option_env!("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    root.join("web")
}

fn read(relative: &str) -> Result<String, String> {
    let path = web_dir().join(relative);
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn strip_comments(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => rest = &rest[start + 2 + end + 2..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// The custom properties declared in the top-level `.nrm-theme { … }` rules.
fn theme_tokens(css: &str) -> Result<BTreeMap<String, String>, String> {
    let css = strip_comments(css);
    let mut tokens = BTreeMap::new();
    let mut depth = 0usize;
    let mut selector_start = 0usize;
    let mut body_start = None;
    for (index, ch) in css.char_indices() {
        match ch {
            '{' => {
                if depth == 0 && css[selector_start..index].trim() == ".nrm-theme" {
                    body_start = Some(index + 1);
                }
                depth += 1;
            }
            '}' => {
                depth = depth.checked_sub(1).ok_or("unbalanced '}' in theme.css")?;
                if depth == 0 {
                    if let Some(start) = body_start.take() {
                        for declaration in css[start..index].split(';') {
                            let Some((name, value)) = declaration.split_once(':') else {
                                continue;
                            };
                            let name = name.trim();
                            if !name.starts_with("--") {
                                continue;
                            }
                            if tokens.insert(name.to_string(), value.trim().to_string()).is_some() {
                                return Err(format!("{name} is declared twice in .nrm-theme"));
                            }
                        }
                    }
                    selector_start = index + 1;
                }
            }
            _ => {}
        }
    }
    if tokens.is_empty() {
        return Err("no custom properties found in a .nrm-theme rule".to_string());
    }
    Ok(tokens)
}

/// Follows `var(--name[, fallback])` until a plain value.
fn resolve(tokens: &BTreeMap<String, String>, value: &str, hops: usize) -> Result<String, String> {
    let value = value.trim();
    if hops > 32 {
        return Err(format!("reference cycle at {value}"));
    }
    let Some(inner) = value.strip_prefix("var(").and_then(|v| v.strip_suffix(')')) else {
        return Ok(value.to_string());
    };
    let (name, fallback) = match inner.split_once(',') {
        Some((name, fallback)) => (name.trim(), Some(fallback)),
        None => (inner.trim(), None),
    };
    match (tokens.get(name), fallback) {
        (Some(next), _) => resolve(tokens, next, hops + 1),
        (None, Some(fallback)) => resolve(tokens, fallback, hops + 1),
        (None, None) => Err(format!("{name} is not defined")),
    }
}

/// `#rgb` or `#rrggbb` to channels in 0..=1.
fn parse_hex(value: &str) -> Result<[f64; 3], String> {
    let hex = value
        .strip_prefix('#')
        .ok_or_else(|| format!("{value:?} is not a hex colour"))?;
    let digits: Vec<u32> = hex
        .chars()
        .map(|c| c.to_digit(16).ok_or_else(|| format!("{value:?} is not a hex colour")))
        .collect::<Result<_, _>>()?;
    let bytes = match digits.as_slice() {
        [r, g, b] => [r * 17, g * 17, b * 17],
        [r1, r2, g1, g2, b1, b2] => [r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2],
        _ => return Err(format!("{value:?} is not #rgb or #rrggbb")),
    };
    Ok(bytes.map(|b| f64::from(b) / 255.0))
}

/// Relative luminance, WCAG 2.1.
fn luminance([r, g, b]: [f64; 3]) -> f64 {
    let linear = |c: f64| {
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (light, dark) = if la >= lb { (la, lb) } else { (lb, la) };
    (light + 0.05) / (dark + 0.05)
}

fn colour_of(tokens: &BTreeMap<String, String>, name: &str) -> Result<(String, [f64; 3]), String> {
    let value = resolve(tokens, &format!("var({name})"), 0)?;
    let rgb = parse_hex(&value).map_err(|e| format!("{name}: {e}"))?;
    Ok((value, rgb))
}

/// Every `--name` that appears inside `var(` in `css`.
fn referenced_tokens(css: &str) -> Vec<String> {
    css.match_indices("var(")
        .filter_map(|(i, _)| {
            let rest = css[i + 4..].trim_start();
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))?;
            rest.starts_with("--").then(|| rest[..end].to_string())
        })
        .collect()
}

#[test]
fn contrast_formula_matches_known_ratios() {
    let black = [0.0, 0.0, 0.0];
    let white = [1.0, 1.0, 1.0];
    assert!((contrast(black, white) - 21.0).abs() < 1e-9);
    assert!((contrast(white, white) - 1.0).abs() < 1e-9);
    let grey = parse_hex("#777").unwrap_or([0.0; 3]);
    // #777777 on white is the classic "just fails" grey: 4.48:1.
    assert!((contrast(grey, white) - 4.48).abs() < 0.01, "{}", contrast(grey, white));
    assert!(parse_hex("transparent").is_err());
    assert!(parse_hex("#12345").is_err());
}

#[test]
fn theme_colour_pairs_meet_wcag_aa() {
    let tokens = match read("static/theme.css").and_then(|css| theme_tokens(&css)) {
        Ok(tokens) => tokens,
        Err(e) => panic!("{e}"),
    };
    let mut failures = String::new();
    for &(foreground, background, minimum) in PAIRS {
        let pair = colour_of(&tokens, foreground).and_then(|f| Ok((f, colour_of(&tokens, background)?)));
        match pair {
            Ok(((fg_value, fg), (bg_value, bg))) => {
                let ratio = contrast(fg, bg);
                println!("{ratio:5.2}:1 (min {minimum}) {foreground} {fg_value} on {background} {bg_value}");
                if ratio < minimum {
                    let _ = writeln!(
                        failures,
                        "  {foreground} ({fg_value}) on {background} ({bg_value}): {ratio:.2}:1, needs {minimum}:1"
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(failures, "  {foreground} on {background}: {e}");
            }
        }
    }
    assert!(failures.is_empty(), "colour pairs below WCAG 2.1 AA:\n{failures}");
}

#[test]
fn theme_references_only_its_own_tokens() {
    let css = match read("static/theme.css") {
        Ok(css) => strip_comments(&css),
        Err(e) => panic!("{e}"),
    };
    let tokens = match theme_tokens(&css) {
        Ok(tokens) => tokens,
        Err(e) => panic!("{e}"),
    };
    let missing: Vec<String> = referenced_tokens(&css)
        .into_iter()
        .filter(|name| !tokens.contains_key(name))
        .collect();
    assert!(missing.is_empty(), "theme.css refers to undefined tokens: {missing:?}");
}

#[test]
fn app_and_public_css_use_theme_tokens_and_write_no_colour() {
    for sheet in ["static/app.css", "static/public.css"] {
        sheet_uses_theme_tokens(sheet);
    }
}

fn sheet_uses_theme_tokens(sheet: &str) {
    const NAMED: &[&str] = &[
        "black", "white", "red", "green", "blue", "yellow", "orange", "purple", "grey", "gray", "silver", "navy",
        "teal", "maroon", "olive", "lime", "aqua", "fuchsia", "pink", "brown",
    ];
    let (app, theme) = match (read(sheet), read("static/theme.css")) {
        (Ok(app), Ok(theme)) => (strip_comments(&app), theme),
        (Err(e), _) | (_, Err(e)) => panic!("{e}"),
    };
    let tokens = match theme_tokens(&theme) {
        Ok(tokens) => tokens,
        Err(e) => panic!("{e}"),
    };
    let mut problems = Vec::new();
    for (i, _) in app.match_indices('#') {
        let digits = app[i + 1..].chars().take_while(char::is_ascii_hexdigit).count();
        if matches!(digits, 3 | 4 | 6 | 8) {
            problems.push(format!("hex colour {}", &app[i..=i + digits]));
        }
    }
    for function in ["rgb(", "rgba(", "hsl(", "hsla(", "hwb(", "oklch(", "color-mix("] {
        if app.contains(function) {
            problems.push(format!("colour function {function}"));
        }
    }
    for word in app.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        if NAMED.contains(&word.to_ascii_lowercase().as_str()) {
            problems.push(format!("named colour {word}"));
        }
    }
    for name in referenced_tokens(&app) {
        // Tokens a sheet sets for itself (print-sheet line counts) are declared in app.css.
        let local = app.contains(&format!("{name}:"));
        if !tokens.contains_key(&name) && !local {
            problems.push(format!("{name} is not defined in theme.css"));
        }
    }
    assert!(problems.is_empty(), "{sheet}: {problems:?}");
}
