//! Photo uploads: checked by content, EXIF location read, metadata stripped (being built).
