//! efile-adapter-xmeld
