package org.scijava.io.location;

import java.io.File;

/** Test stub of SciJava's FileLocation. */
public final class FileLocation {
    public final File file;

    public FileLocation(File file) {
        this.file = file;
    }
}
