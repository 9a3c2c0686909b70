/*
 * client.c: the client subcommands.
 */
#include <stdio.h>

#include "sandd.h"

int
client_main(const char *cmd, int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "sandd %s: not yet\n", cmd);
	return (2);
}
