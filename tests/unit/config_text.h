/*
 * For the unit tests that drive the configuration parser with text.
 * Include after <cmocka.h> and grgw.h.
 */
#ifndef GRGW_TEST_CONFIG_TEXT_H
#define GRGW_TEST_CONFIG_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Feed text to a new parser for filename one line at a time, each line
 * copied into a heap buffer of exactly its length without a NUL, so that
 * the sanitizer build catches any read past the length given.  Returns
 * the parser (caller frees); *rc is config_parse_finish()'s result.
 */
static inline struct config_parser *
config_text_parse(const char *filename, const char *text,
    struct grgw_config *cfg, int *rc)
{
	struct config_parser	*p;
	const char		*s = text, *nl;
	char			*copy;
	size_t			 len;

	p = config_parse_new(filename);
	assert_non_null(p);
	while (*s != '\0') {
		nl = strchr(s, '\n');
		len = nl != NULL ? (size_t)(nl - s) : strlen(s);
		copy = malloc(len > 0 ? len : 1);
		assert_non_null(copy);
		memcpy(copy, s, len);
		config_parse_line(p, copy, len);
		free(copy);
		if (nl == NULL)
			break;
		s = nl + 1;
	}
	*rc = config_parse_finish(p, cfg);
	return p;
}

/* Every error the parser recorded, on stderr (for a failing test). */
static inline void
dump_errors(const struct config_parser *p)
{
	size_t	 i;

	for (i = 0; i < config_parse_error_count(p); i++)
		fprintf(stderr, "  | %s\n", config_parse_error(p, i));
}

#endif /* GRGW_TEST_CONFIG_TEXT_H */
