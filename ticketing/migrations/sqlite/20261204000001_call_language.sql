-- The language the IVR spoke with the caller ('zh', 'en': the caller's choice or the flow's
-- default); NULL when the call had no IVR. Its recording is transcribed in that language.
ALTER TABLE calls ADD COLUMN language TEXT;
