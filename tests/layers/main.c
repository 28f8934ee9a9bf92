/* Nothing to run: an executable that links one library whole (every object
 * of it) with only the libraries and packages its layer may use, so a call
 * across the layering (the store into FUSE or the writeback, the model into
 * SQLite or the client) fails the link. */
int main(void)
{
	return 0;
}
