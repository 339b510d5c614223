/*
 * html.h: what tally's printable HTML pages share (invoices, SLA reports):
 * text escaping and the page's head with its one stylesheet.
 */
#ifndef TALLY_HTML_H
#define TALLY_HTML_H

#include <stdio.h>

/* s with & < > " ' escaped, for text and attribute values alike. */
void html_esc(FILE *f, const char *s);

/* "<!DOCTYPE html>..." up to and including "<body>", titled title
 * (escaped). The page is closed with "</body></html>\n". */
void html_head(FILE *f, const char *title);

#endif
