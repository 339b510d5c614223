/*
 * html.c: escaping and the shared head of tally's HTML pages (html.h).
 */
#include "html.h"

void html_esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

void html_head(FILE *f, const char *title)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", f);
	html_esc(f, title);
	fputs("</title>\n<style>\n"
	      "body{font:14px/1.4 'DejaVu Sans',Arial,sans-serif;color:#111;margin:2em}\n"
	      "section.invoice{page-break-after:always;margin-bottom:3em}\n"
	      "h1{font-size:20px;margin:0 0 .3em}\n"
	      "table{border-collapse:collapse;width:100%;margin:1em 0}\n"
	      "th,td{padding:3px 6px;border-bottom:1px solid #ddd;vertical-align:top}\n"
	      "th{text-align:left;background:#f3f3f3}\n"
	      "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
	      "tr.group td{font-weight:bold;background:#fafafa}\n"
	      "tr.total td{font-weight:bold;border-top:2px solid #111}\n"
	      "tr.incident td{color:#444;font-size:12px;border-bottom:none}\n"
	      "tr.breached td.avail{color:#a00;font-weight:bold}\n"
	      ".meta{color:#444}.note{color:#a40}\n"
	      "figure{margin:1em 0;page-break-inside:avoid}figcaption{color:#444;font-size:12px}\n"
	      "header{display:flex;justify-content:space-between;gap:2em;margin-bottom:1.5em}\n"
	      ".party{margin:0 0 1em}.party .label{color:#666;font-size:12px;text-transform:uppercase}\n"
	      ".party .name{font-weight:bold}\n"
	      "table.meta{width:auto;margin:0}table.meta th{background:none;font-weight:normal;color:#555;padding:1px 8px 1px 0}\n"
	      "table.meta td{border:none;padding:1px 0}\n"
	      "th.n{text-align:right}th{white-space:nowrap}td.unit,tr.calc td{white-space:nowrap}\n"
	      "tr.calc td{color:#555;font-size:12px;border-bottom:none;padding-left:18px}\n"
	      "tr.explain td{color:#555;font-size:12px}\n"
	      "tr.detail td{color:#555;font-size:12px}.internal{color:#777}\n"
	      "tr.subtotal td,tr.tax td{border-bottom:none}\n"
	      ".taxnote{font-weight:bold}.payment{margin:1em 0;padding:.6em;border:1px solid #ccc}\n"
	      "img.chart{max-width:100%}\n"
	      "@page{size:A4;margin:14mm}\n"
	      "@media print{body{margin:0;font-size:12px}}\n"
	      "</style></head><body>\n", f);
}
