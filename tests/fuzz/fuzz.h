/*
 * fuzz.h: the libFuzzer entry points, and the start-up that the harnesses
 * which log share; each of them defines fuzz_setup() for its own part.
 */

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_setup(void);

/* No /dev/log: the log lines are formatted, then dropped (FUZZ_LOG: kept). */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (getenv("FUZZ_LOG") == NULL)
		log_init(0, LOG_MAIL);
	fuzz_setup();
	return (0);
}
