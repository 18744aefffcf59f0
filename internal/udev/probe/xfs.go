package probe

import "bytes"

// probeXFS checks the geometry as libblkid does, since the 4-byte magic
// alone is too weak.
func probeXFS(d *dev) (Result, bool, error) {
	b, ok, err := d.get(0, 208)
	if !ok || !bytes.Equal(b[0:4], []byte("XFSB")) {
		return Result{}, false, err
	}
	blocksize := be32(b, 4)
	dblocks := be64(b, 8)
	rextsize := be32(b, 80)
	agblocks := be32(b, 84)
	agcount := be32(b, 88)
	sectsize := uint32(be16(b, 102))
	inodesize := uint32(be16(b, 104))
	blocklog, sectlog, inodelog, inopblog := uint32(b[120]), uint32(b[121]), uint32(b[122]), uint32(b[123])
	imaxPct := b[127]
	rtext := rextsize * blocksize // wraps in uint32 like libblkid's check
	switch {
	case agcount == 0,
		sectsize < 512 || sectsize > 32768, sectlog < 9 || sectlog > 15, sectsize != 1<<sectlog,
		blocksize < 512 || blocksize > 65536, blocklog < 9 || blocklog > 16, blocksize != 1<<blocklog,
		inodesize < 256 || inodesize > 2048, inodelog < 8 || inodelog > 11, inodesize != 1<<inodelog,
		blocklog-inodelog != inopblog,
		rtext > 1<<30, rtext < 4<<10,
		imaxPct > 100,
		dblocks == 0,
		dblocks > uint64(agcount)*uint64(agblocks),
		dblocks < uint64(agcount-1)*uint64(agblocks)+64:
		return Result{}, false, nil
	}
	var r Result
	if b[0x6C] != 0 {
		r.Label = label(b[0x6C:0x78])
	}
	r.UUID = uuid16(b[0x20:0x30])
	r.BlockSize = sectsize
	return r, true, nil
}
