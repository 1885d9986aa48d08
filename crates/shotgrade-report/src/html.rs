//! The HTML report: one self-contained file (inline CSS, JS and images, no network) that shows a
//! whole folder at a glance — summary, score histogram, background mix, rule failures — then a
//! sortable, filterable table worst-first and a card per image with its reasons.
//!
//! Everything is rendered here as static HTML, so the report reads fine with JavaScript off;
//! the small inline script only adds sorting and filtering.

use shotgrade_core::report::Status;
use shotgrade_core::{Row, ScoredRow};
use std::collections::BTreeMap;
use std::fmt::Write;

/// What the report shows besides the rows.
#[derive(Debug, Clone, Default)]
pub struct ReportSettings {
    pub title: String,
    /// Where the rows came from (shown under the title).
    pub source: String,
}

/// One row with its optional thumbnail (`data:` URI, typically with the overlay drawn).
pub struct Entry<'a> {
    pub row: &'a Row,
    pub thumbnail: Option<String>,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sort key that puts the worst first: errors, then ascending total.
fn worst_first_key(row: &Row) -> f32 {
    match row {
        Row::Error(_) => -1.0,
        Row::Scored(s) => s.scores.total,
    }
}

/// Counts per score decile, `[0,10), [10,20), …, [90,100]`.
pub fn histogram(totals: &[f32]) -> [usize; 10] {
    let mut bins = [0usize; 10];
    for t in totals {
        let i = ((t.clamp(0.0, 100.0) / 10.0) as usize).min(9);
        bins[i] += 1;
    }
    bins
}

/// Renders the report.
pub fn render(entries: &[Entry<'_>], settings: &ReportSettings) -> String {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| {
        worst_first_key(entries[a].row).total_cmp(&worst_first_key(entries[b].row))
    });
    let scored: Vec<&ScoredRow> = entries
        .iter()
        .filter_map(|e| match e.row {
            Row::Scored(s) => Some(s.as_ref()),
            Row::Error(_) => None,
        })
        .collect();
    let errors = entries.len() - scored.len();

    let mut h = String::with_capacity(64 * 1024 + entries.len() * 2048);
    let title = escape(&settings.title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n\
         <header><h1>{title}</h1><p class=\"muted\">{}</p></header>\n",
        escape(&settings.source)
    );
    summary(&mut h, &scored, errors, entries.len());
    table(&mut h, entries, &order);
    h.push_str("<section id=\"cards\"><h2>Images</h2>\n");
    for &i in &order {
        card(&mut h, i, &entries[i]);
    }
    h.push_str("</section>\n");
    let _ = writeln!(h, "<script>{SCRIPT}</script></body></html>");
    h
}

fn summary(h: &mut String, scored: &[&ScoredRow], errors: usize, total: usize) {
    let mut totals: Vec<f32> = scored.iter().map(|s| s.scores.total).collect();
    totals.sort_by(f32::total_cmp);
    let median = if totals.is_empty() {
        0.0
    } else {
        totals[totals.len() / 2]
    };
    let mean = totals.iter().sum::<f32>() / totals.len().max(1) as f32;
    let _ = writeln!(
        h,
        "<section id=\"summary\"><h2>Summary</h2><div class=\"stats\">\
         <div><b id=\"count-images\">{total}</b> images</div>\
         <div><b id=\"count-scored\">{}</b> scored</div>\
         <div><b id=\"count-errors\">{errors}</b> errors</div>\
         <div><b>{median:.0}</b> median score</div><div><b>{mean:.1}</b> mean score</div></div>",
        scored.len()
    );

    // Histogram as inline SVG bars.
    let bins = histogram(&totals);
    let peak = bins.iter().copied().max().unwrap_or(0).max(1);
    h.push_str(
        "<figure><figcaption>Score histogram</figcaption>\
         <svg id=\"histogram\" viewBox=\"0 0 400 130\" role=\"img\" aria-label=\"score histogram\">",
    );
    for (i, n) in bins.iter().enumerate() {
        let bh = 100.0 * *n as f32 / peak as f32;
        let colour = if i >= 7 {
            "#3c9"
        } else if i >= 5 {
            "#eb3"
        } else {
            "#e55"
        };
        let _ = write!(
            h,
            "<rect class=\"bin\" data-count=\"{n}\" x=\"{}\" y=\"{:.1}\" width=\"36\" height=\"{bh:.1}\" fill=\"{colour}\"><title>{}–{}: {n}</title></rect>\
             <text x=\"{}\" y=\"125\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            i * 40 + 2,
            105.0 - bh,
            i * 10,
            i * 10 + 10,
            i * 40 + 20,
            i * 10
        );
    }
    h.push_str("</svg></figure>\n");

    // Background mix.
    let mut mix: BTreeMap<String, usize> = BTreeMap::new();
    for s in scored {
        *mix.entry(s.background.class.to_string()).or_default() += 1;
    }
    h.push_str(
        "<figure><figcaption>Background mix</figcaption><ul class=\"bars\" id=\"background-mix\">",
    );
    for (class, n) in &mix {
        let pct = 100.0 * *n as f32 / scored.len().max(1) as f32;
        let _ = write!(
            h,
            "<li><span>{class}</span><i style=\"width:{pct:.0}%\"></i><em>{n}</em></li>"
        );
    }
    h.push_str("</ul></figure>\n");

    // Rule failures by check, when a profile was used.
    let mut fails: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut profile_name = None;
    for s in scored {
        if let Some(p) = &s.profile {
            profile_name.get_or_insert_with(|| p.name.clone());
            for c in &p.checks {
                let e = fails.entry(c.check.clone()).or_default();
                match c.status {
                    Status::Fail => e.0 += 1,
                    Status::Warn => e.1 += 1,
                    Status::Pass => {}
                }
            }
        }
    }
    if let Some(name) = profile_name {
        let _ = write!(
            h,
            "<figure><figcaption>Rule results by check ({})</figcaption>\
             <table id=\"rule-failures\"><tr><th>check</th><th>fail</th><th>warn</th></tr>",
            escape(&name)
        );
        for (check, (f, w)) in &fails {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\">{f}</td><td class=\"num\">{w}</td></tr>",
                escape(check)
            );
        }
        h.push_str("</table></figure>\n");
    }
    h.push_str("</section>\n");
}

fn status_badge(status: Status) -> String {
    format!("<span class=\"badge {status}\">{status}</span>")
}

fn table(h: &mut String, entries: &[Entry<'_>], order: &[usize]) {
    h.push_str(
        "<section id=\"list\"><h2>All images, worst first</h2>\
         <div class=\"controls\"><input id=\"filter\" type=\"search\" placeholder=\"Filter by path, class or reason…\">\
         <select id=\"class-filter\"><option value=\"\">any background</option>\
         <option>white</option><option>black</option><option>solid</option>\
         <option>lifestyle</option><option>cluttered</option><option>error</option></select>\
         <span id=\"shown\"></span></div>\
         <table id=\"results\"><thead><tr><th></th>\
         <th data-sort=\"text\">path</th><th data-sort=\"num\">total</th>\
         <th data-sort=\"num\">background</th><th data-sort=\"num\">position</th>\
         <th data-sort=\"num\">visual</th><th data-sort=\"text\">class</th>\
         <th data-sort=\"text\">profile</th><th>top reason</th></tr></thead><tbody>\n",
    );
    for &i in order {
        let e = &entries[i];
        match e.row {
            Row::Scored(s) => {
                let thumb = e
                    .thumbnail
                    .as_deref()
                    .map(|t| format!("<img class=\"mini\" src=\"{t}\" alt=\"\">"))
                    .unwrap_or_default();
                let reason = s.reasons.first().map(|r| r.message.as_str()).unwrap_or("");
                let profile = s
                    .profile
                    .as_ref()
                    .map(|p| status_badge(p.status))
                    .unwrap_or_default();
                let all_reasons: Vec<&str> = s.reasons.iter().map(|r| r.message.as_str()).collect();
                let _ = writeln!(
                    h,
                    "<tr class=\"row\" data-class=\"{class}\" data-search=\"{search}\">\
                     <td>{thumb}</td><td><a href=\"#card-{i}\">{path}</a></td>\
                     <td class=\"num total\" style=\"color:{colour}\">{:.1}</td>\
                     <td class=\"num\">{:.0}</td><td class=\"num\">{:.0}</td><td class=\"num\">{:.0}</td>\
                     <td>{class}</td><td>{profile}</td><td class=\"reason\">{}</td></tr>",
                    s.scores.total,
                    s.scores.background,
                    s.scores.position,
                    s.scores.visual,
                    escape(reason),
                    class = s.background.class,
                    search = escape(&format!(
                        "{} {} {}",
                        s.path,
                        s.background.class,
                        all_reasons.join(" ")
                    )),
                    path = escape(&s.path),
                    colour = css_colour(s.scores.total),
                );
            }
            Row::Error(err) => {
                let _ = writeln!(
                    h,
                    "<tr class=\"row error\" data-class=\"error\" data-search=\"{search}\">\
                     <td></td><td><a href=\"#card-{i}\">{path}</a></td>\
                     <td class=\"num total\">–</td><td></td><td></td><td></td><td>error</td><td></td>\
                     <td class=\"reason\">{kind}: {message}</td></tr>",
                    search = escape(&format!("{} error {}", err.path, err.error.message)),
                    path = escape(&err.path),
                    kind = escape(err.error.kind.as_str()),
                    message = escape(&err.error.message),
                );
            }
        }
    }
    h.push_str("</tbody></table></section>\n");
}

fn css_colour(score: f32) -> &'static str {
    if score >= 75.0 {
        "#1a8a4a"
    } else if score >= 50.0 {
        "#a86a00"
    } else {
        "#c0392b"
    }
}

fn card(h: &mut String, i: usize, e: &Entry<'_>) {
    match e.row {
        Row::Error(err) => {
            let _ = writeln!(
                h,
                "<article class=\"card error\" id=\"card-{i}\"><h3>{}</h3>\
                 <p class=\"reason\">could not be scored — {}: {}</p></article>",
                escape(&err.path),
                escape(err.error.kind.as_str()),
                escape(&err.error.message)
            );
        }
        Row::Scored(s) => {
            let _ = write!(
                h,
                "<article class=\"card\" id=\"card-{i}\"><h3>{}</h3><div class=\"card-body\">",
                escape(&s.path)
            );
            if let Some(t) = &e.thumbnail {
                let _ = write!(
                    h,
                    "<img class=\"overlay\" src=\"{t}\" alt=\"annotated photo\">"
                );
            }
            let sc = &s.scores;
            let _ = write!(
                h,
                "<div><p class=\"scores\"><b style=\"color:{}\">{:.0}</b> total · background {:.0} · \
                 position {:.0} · visual {:.0} (aesthetic {:.0}, cleanliness {:.0})</p>\
                 <p class=\"muted\">{} × {} {} · background {} ({:.0} %) · scene {}</p>",
                css_colour(sc.total),
                sc.total,
                sc.background,
                sc.position,
                sc.visual,
                sc.aesthetic,
                sc.noise,
                s.image.width,
                s.image.height,
                escape(&s.image.format),
                s.background.class,
                s.background.probability * 100.0,
                escape(&s.scene)
            );
            if s.reasons.is_empty() {
                h.push_str("<p>No deductions.</p>");
            } else {
                h.push_str("<ul class=\"reasons\">");
                for r in &s.reasons {
                    let _ = write!(
                        h,
                        "<li class=\"reason\"><span class=\"pts\">−{:.1}</span> {}</li>",
                        r.points,
                        escape(&r.message)
                    );
                }
                h.push_str("</ul>");
            }
            if let Some(p) = &s.profile {
                let _ = write!(
                    h,
                    "<table class=\"checks\"><caption>{} {}</caption>\
                     <tr><th>check</th><th>result</th><th>measured</th><th>requirement</th><th>fix</th></tr>",
                    escape(&p.title),
                    status_badge(p.status)
                );
                for c in &p.checks {
                    let _ = write!(
                        h,
                        "<tr class=\"check {}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        c.status,
                        escape(&c.check),
                        status_badge(c.status),
                        escape(&c.measured),
                        escape(&c.threshold),
                        escape(&c.fix)
                    );
                }
                h.push_str("</table>");
            }
            h.push_str("</div></div></article>\n");
        }
    }
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px;color:#222}
h1{margin:18px 0 0}h2{border-bottom:1px solid #ddd;padding-bottom:4px}.muted{color:#777}
.stats{display:flex;gap:24px;flex-wrap:wrap}.stats b{font-size:22px;display:block}
figure{display:inline-block;vertical-align:top;margin:8px 24px 8px 0;min-width:300px}figcaption{font-weight:600;margin-bottom:4px}
#histogram{width:400px;height:130px}.bars{list-style:none;padding:0;margin:0}
.bars li{display:flex;align-items:center;gap:6px;margin:2px 0}.bars span{width:80px}.bars i{display:inline-block;height:12px;background:#69c;max-width:200px}
table{border-collapse:collapse}td,th{padding:3px 8px;text-align:left;border-bottom:1px solid #eee}
th[data-sort]{cursor:pointer;user-select:none}th[data-sort]:after{content:" ⇅";color:#aaa}
.num{text-align:right;font-variant-numeric:tabular-nums}.total{font-weight:700}
img.mini{width:48px;height:48px;object-fit:contain;background:#f4f4f4}
.controls{display:flex;gap:8px;margin:8px 0}#filter{flex:1;padding:4px}
tr.error td{color:#c0392b}.badge{padding:1px 6px;border-radius:8px;font-size:12px;color:#fff}
.badge.pass{background:#1a8a4a}.badge.warn{background:#c98a00}.badge.fail{background:#c0392b}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:12px 0}.card h3{margin:0 0 6px;font-size:15px;word-break:break-all}
.card-body{display:flex;gap:16px;align-items:flex-start}img.overlay{max-width:320px;max-height:320px;background:#f4f4f4}
.reasons{padding-left:18px}.pts{color:#c0392b;font-variant-numeric:tabular-nums}.scores b{font-size:20px}
.checks caption{text-align:left;font-weight:600}
"#;

const SCRIPT: &str = r#"
(function(){
  var tbody=document.querySelector('#results tbody');
  var rows=Array.prototype.slice.call(tbody.querySelectorAll('tr.row'));
  var filter=document.getElementById('filter'),cls=document.getElementById('class-filter'),shown=document.getElementById('shown');
  function apply(){
    var q=filter.value.toLowerCase(),c=cls.value,n=0;
    rows.forEach(function(r){
      var ok=(!q||r.dataset.search.toLowerCase().indexOf(q)>=0)&&(!c||r.dataset.class===c);
      r.style.display=ok?'':'none';if(ok)n++;
    });
    shown.textContent=n+' of '+rows.length+' shown';
  }
  filter.addEventListener('input',apply);cls.addEventListener('change',apply);
  document.querySelectorAll('#results th[data-sort]').forEach(function(th){
    var asc=true;
    th.addEventListener('click',function(){
      var i=th.cellIndex,num=th.dataset.sort==='num';
      rows.sort(function(a,b){
        var x=a.cells[i].textContent,y=b.cells[i].textContent;
        if(num){x=parseFloat(x);y=parseFloat(y);if(isNaN(x))x=-1;if(isNaN(y))y=-1;return asc?x-y:y-x;}
        return asc?x.localeCompare(y):y.localeCompare(x);
      });
      asc=!asc;rows.forEach(function(r){tbody.appendChild(r);});
    });
  });
  apply();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        let scored = |path: &str, total: f32, class: &str, reason: &str| {
            serde_json::from_str::<Row>(&format!(
                r#"{{"path":"{path}","status":"ok","scene":"general",
                "scores":{{"total":{total},"background":90.0,"position":80.0,"visual":75.0,"aesthetic":70.0,"noise":80.0}},
                "image":{{"width":800,"height":600,"format":"jpeg","file_bytes":1,"has_alpha":false,
                  "transparent_fraction":0.0,"border_rgb":[255,255,255],"border_pure_white_fraction":1.0}},
                "background":{{"class":"{class}","probability":0.97,"probabilities":{{}}}},
                "position":{{"main":null,"detections":0}},
                "reasons":[{{"component":"position","code":"no_product","message":"{reason}","points":12.5}}]}}"#
            ))
            .expect("row")
        };
        vec![
            scored("good.jpg", 91.0, "white", "fine"),
            scored("bad<script>.jpg", 22.0, "cluttered", "clutter & <b>noise</b>"),
            serde_json::from_str(
                r#"{"path":"broken.jpg","status":"error","error":{"kind":"corrupt","message":"jpeg data is truncated"}}"#,
            )
            .expect("error row"),
        ]
    }

    #[test]
    fn worst_first_with_errors_on_top_and_everything_escaped() {
        let rows = rows();
        let entries: Vec<Entry> = rows
            .iter()
            .map(|row| Entry {
                row,
                thumbnail: None,
            })
            .collect();
        let html = render(
            &entries,
            &ReportSettings {
                title: "Report <1>".into(),
                source: "r.jsonl".into(),
            },
        );
        let pos = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(pos("broken.jpg") < pos("bad&lt;script&gt;.jpg"));
        assert!(pos("bad&lt;script&gt;.jpg") < pos("good.jpg"));
        assert!(!html.contains("<script>.jpg") && !html.contains("<b>noise"));
        assert!(html.contains("Report &lt;1&gt;"));
        assert_eq!(html.matches("<article class=\"card").count(), 3);
        assert!(html.contains("id=\"count-errors\">1<"));
        // No external resources: the file works offline.
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn histogram_bins_cover_0_to_100() {
        assert_eq!(
            histogram(&[0.0, 9.99, 10.0, 55.0, 99.0, 100.0, -3.0, 250.0]),
            [3, 1, 0, 0, 0, 1, 0, 0, 0, 3]
        );
    }
}
