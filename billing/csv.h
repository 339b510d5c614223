/*
 * csv.h: RFC 4180 output shared by the reports (usage, invoices, SLA).
 * Records end in CRLF; a field is quoted only when it holds a comma, a
 * double quote, CR or LF, and a quote inside it is doubled.
 */
#ifndef TALLY_CSV_H
#define TALLY_CSV_H

#include <stdio.h>

void csv_field(FILE *f, const char *s);

#endif
