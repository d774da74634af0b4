-- The language a recording is spoken in when the call knows it (the caller chose English in the
-- IVR); NULL: the transcription worker's configured language.
ALTER TABLE transcription_jobs ADD COLUMN language TEXT;
