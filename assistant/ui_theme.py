"""Look and small behaviours of the chat window: theme, CSS, and the script that
makes ``[n]`` markers scroll to (and flash) their source card."""

from __future__ import annotations

from typing import Any

CSS = """
.gradio-container { max-width: 1480px !important; margin: 0 auto !important; }
#sn-header { display: flex; align-items: flex-end; justify-content: space-between; gap: 16px; flex-wrap: wrap;
  padding: 6px 4px 2px; }
#sn-header h1 { font-size: 1.55rem; margin: 0; letter-spacing: -0.01em; }
#sn-header h1 .sn-logo { color: var(--color-accent); }
#sn-header .sn-tagline { color: var(--body-text-color-subdued); margin-top: 2px; }
.sn-status { font-size: 0.82rem; color: var(--body-text-color-subdued); white-space: nowrap; }
#sn-filters .sn-hint, .sn-hint { font-size: 0.78rem; color: var(--body-text-color-subdued); }
.sn-answer { line-height: 1.55; }
.sn-quote { border-left: 3px solid var(--border-color-primary); padding-left: 10px; opacity: .85; }
.sn-quote-head, .sn-answerer { font-size: .8em; opacity: .7; margin-bottom: 4px; }
.sn-answerer { margin: 6px 0 0 0; }
a.sn-cite { display: inline-block; font-size: 0.74em; font-weight: 600; vertical-align: super; line-height: 1;
  padding: 1px 4px; margin: 0 1px; border-radius: 5px; text-decoration: none !important;
  background: var(--color-accent-soft); color: var(--color-accent) !important; cursor: pointer; }
a.sn-cite:hover { background: var(--color-accent); color: white !important; }
.sn-streaming .sn-caret { display: inline-block; width: 7px; height: 1em; margin-left: 2px; vertical-align: -2px;
  background: var(--color-accent); animation: sn-blink 1s steps(2) infinite; }
@keyframes sn-blink { 50% { opacity: 0; } }
.sn-pending { color: var(--body-text-color-subdued); font-style: italic; }
.sn-pending .sn-dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 8px;
  background: var(--color-accent); animation: sn-pulse 1s ease-in-out infinite; }
@keyframes sn-pulse { 0%, 100% { opacity: .25; } 50% { opacity: 1; } }
.sn-refusal { border-left: 4px solid #d97706; background: rgba(217, 119, 6, 0.08); padding: 8px 12px;
  border-radius: 6px; }
.sn-refusal-head { font-weight: 700; color: #b45309; font-size: 0.85rem; text-transform: uppercase;
  letter-spacing: 0.04em; margin-bottom: 2px; }
.sn-refusal.sn-error { border-left-color: #dc2626; background: rgba(220, 38, 38, 0.08); }
.sn-refusal.sn-error .sn-refusal-head { color: #b91c1c; }
.sn-refusal-hint { font-size: 0.8rem; color: var(--body-text-color-subdued); margin-top: 4px; }
#sn-sources { max-height: calc(64vh + 72px); overflow-y: auto !important; padding-right: 4px; }
.sn-sources-head { font-weight: 700; font-size: 1rem; margin: 2px 0 10px; }
.sn-sources-head.sn-near { color: #b45309; }
.sn-sub { font-weight: 400; font-size: 0.78rem; color: var(--body-text-color-subdued); margin-left: 8px; }
.sn-sources-empty { color: var(--body-text-color-subdued); padding: 18px 6px; line-height: 1.5; }
.sn-source { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px;
  margin-bottom: 10px; background: var(--background-fill-primary); transition: box-shadow .3s, border-color .3s; }
.sn-source-near { border-style: dashed; }
.sn-source.sn-flash { border-color: var(--color-accent); box-shadow: 0 0 0 3px var(--color-accent-soft); }
.sn-source-head { display: flex; gap: 8px; align-items: baseline; }
.sn-n { flex: none; min-width: 22px; height: 22px; border-radius: 6px; background: var(--color-accent);
  color: white; font-weight: 700; font-size: 0.8rem; display: inline-flex; align-items: center;
  justify-content: center; }
.sn-source-near .sn-n { background: #9ca3af; }
.sn-title { font-weight: 600; line-height: 1.3; }
.sn-bulletin { font-size: 0.82rem; margin: 2px 0 0 30px; color: var(--body-text-color); }
.sn-meta { font-size: 0.78rem; color: var(--body-text-color-subdued); margin: 2px 0 6px 30px; }
.sn-unknown { font-style: italic; }
.sn-passage { margin: 0; padding: 6px 10px; border-left: 3px solid var(--border-color-primary);
  font-size: 0.86rem; line-height: 1.5; color: var(--body-text-color); background: var(--background-fill-secondary);
  border-radius: 0 6px 6px 0; }
mark.sn-support { background: #fde68a; color: #1f2937; padding: 0 1px; border-radius: 2px; }
.sn-article { margin-top: 6px; font-size: 0.82rem; }
.sn-article summary { cursor: pointer; color: var(--color-accent); }
.sn-article-text { max-height: 320px; overflow-y: auto; padding: 6px 10px; margin-top: 4px; line-height: 1.5;
  border: 1px solid var(--border-color-primary); border-radius: 6px; }
.sn-article-text p { margin: 0 0 8px; }
.sn-in-article { background: rgba(253, 230, 138, 0.35); border-radius: 4px; padding: 2px 4px; }
.sn-timings { font-size: 0.74rem; color: var(--body-text-color-subdued); margin-top: 6px; }
.sn-notes { display: inline; margin-left: 8px; }
.sn-notes summary { display: inline; cursor: pointer; }
.sn-notes ul { margin: 4px 0 0 16px; }
.sn-update { font-size: 0.88rem; line-height: 1.5; }
.sn-whats-new-head { font-weight: 700; margin: 2px 0 4px; }
ul.sn-new { list-style: none; margin: 4px 0 0; padding: 0; font-size: 0.88rem; }
ul.sn-new > li { padding: 6px 0; border-bottom: 1px solid var(--border-color-primary); }
ul.sn-new > li:last-child { border-bottom: none; }
ul.sn-new .sn-new-title { font-weight: 600; line-height: 1.3; }
ul.sn-new .sn-meta { margin: 1px 0 2px; }
ul.sn-new .sn-lead { font-size: 0.82rem; line-height: 1.45; }
ul.sn-new code { font-size: 0.74rem; background: none; padding: 0; }
#sn-new-row { align-items: flex-end; }
#sn-new-row > button { flex-grow: 0; margin-bottom: 6px; }
#sn-whats-new, #sn-dups { max-height: 46vh; overflow-y: auto !important; }
.sn-ok { color: #15803d; }
.sn-bad { color: #b91c1c; }
#sn-table { max-height: 60vh; overflow-y: auto !important; }
table.sn-library { width: 100%; border-collapse: collapse; font-size: 0.86rem; border: none !important; }
#sn-table, #sn-table * { border-left: none !important; border-right: none !important; }
table.sn-library th, table.sn-library td { border-left: none !important; border-right: none !important;
  border-top: none !important; }
table.sn-library th { text-align: left; font-size: 0.76rem; text-transform: uppercase; letter-spacing: 0.04em;
  color: var(--body-text-color-subdued); border-bottom: 1px solid var(--border-color-primary); padding: 6px 8px; }
table.sn-library td { padding: 8px; border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
table.sn-library tr:hover td { background: var(--background-fill-secondary); }
table.sn-library code { font-size: 0.74rem; color: var(--body-text-color-subdued); background: none; padding: 0; }
.sn-lib-title { font-weight: 600; }
.sn-num { text-align: right !important; }
.sn-nowrap { white-space: nowrap; }
#sn-add-msg, #sn-remove-msg { font-size: 0.88rem; }
footer { opacity: 0.6; }
"""

JS = """
() => {
  const flash = (id, tries) => {
    const el = document.getElementById(id);
    if (!el) { if (tries > 0) setTimeout(() => flash(id, tries - 1), 100); return; }
    const panel = document.getElementById("sn-sources");
    if (panel && panel.contains(el)) {  // scroll the panel only, not the page
      const top = el.getBoundingClientRect().top - panel.getBoundingClientRect().top - 8;
      panel.scrollBy({ top: top, behavior: "smooth" });
    } else {
      el.scrollIntoView({ behavior: "smooth", block: "nearest" });
    }
    el.classList.remove("sn-flash"); void el.offsetWidth; el.classList.add("sn-flash");
    setTimeout(() => el.classList.remove("sn-flash"), 1600);
  };
  document.addEventListener("click", (event) => {
    const link = event.target.closest ? event.target.closest("a.sn-cite") : null;
    if (!link) return;
    event.preventDefault();
    flash((link.getAttribute("href") || "").slice(1), 20);
  }, true);
}
"""


def theme() -> Any:
    """Gradio's Soft theme in indigo; its fonts ship with Gradio, so nothing is fetched."""
    import gradio as gr

    return gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate")
