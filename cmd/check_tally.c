/*
 * check_tally: a Nagios/Icinga plugin that asks a running tallyd over HTTP
 * about a VM's metrics or the age of its data. All logic lives in
 * exporters/nagios.c; `check_tally -h` lists the options.
 */
#include "nagios.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	return nagios_check_main(argc, argv, stdout);
}
