"""The landing-zone contract: where plant files are dropped and what they must look like."""
