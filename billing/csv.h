/*
 * csv.h: RFC 4180 output shared by the reports (usage, invoices, SLA).
 * Records end in CRLF; a field is quoted only when it holds a comma, a
 * double quote, CR or LF, and a quote inside it is doubled.
 *
 * Text from outside (tenant, VM and label names, descriptions) goes
 * through csv_field(), which also makes it safe for spreadsheets (OWASP's
 * rule against CSV injection): a cell that begins with =, +, -, @, TAB or
 * CR would be read by Excel, LibreOffice or Google Sheets as a formula, so
 * it is written with a single quote in front ('=HYPERLINK(...) is shown as
 * text) and always quoted. Numbers tally generates itself (amounts such as
 * -0.05, quantities, prices) go through csv_number() untouched, so they
 * stay numbers. docs/invoice.md and docs/usage.md state the rule.
 */
#ifndef TALLY_CSV_H
#define TALLY_CSV_H

#include <stdbool.h>
#include <stdio.h>

/* A text cell, neutralised when it could start a formula. */
void csv_field(FILE *f, const char *s);
/* A number tally formatted ("-0.05", "12.500000000"): as it is. */
void csv_number(FILE *f, const char *s);
/* Would a spreadsheet read this text cell as a formula? */
bool csv_formula_like(const char *s);

#endif
