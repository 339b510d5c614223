/*
 * csv.c: RFC 4180 fields, text made safe for spreadsheets (csv.h).
 */
#include "csv.h"

#include <string.h>

bool csv_formula_like(const char *s)
{
	return s[0] && strchr("=+-@\t\r", s[0]) != NULL;
}

static void quoted(FILE *f, const char *prefix, const char *s)
{
	fputc('"', f);
	fputs(prefix, f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void csv_field(FILE *f, const char *s)
{
	if (csv_formula_like(s))
		quoted(f, "'", s);
	else if (strpbrk(s, ",\"\r\n"))
		quoted(f, "", s);
	else
		fputs(s, f);
}

void csv_number(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n"))
		quoted(f, "", s);
	else
		fputs(s, f);
}
