package ir

import "bytes"

// pretty lays out compact JSON for people: an array or object that holds
// no other array or object and is short stays on one line (positions,
// instructions, emits lists); everything else gets one member per line,
// indented by two spaces.
func pretty(compact []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(compact) * 2)
	prettyValue(&out, compact, 0)
	out.WriteByte('\n')
	return out.Bytes()
}

const inlineWidth = 72

// prettyValue writes the value at the start of b and returns its length.
func prettyValue(out *bytes.Buffer, b []byte, depth int) int {
	if b[0] != '{' && b[0] != '[' {
		n := scalarLen(b)
		out.Write(b[:n])
		return n
	}
	n, flat := containerLen(b)
	if flat && n <= inlineWidth {
		writeInline(out, b[:n])
		return n
	}
	closing := byte('}')
	if b[0] == '[' {
		closing = ']'
	}
	out.WriteByte(b[0])
	i := 1
	if b[i] == closing {
		out.WriteByte(closing)
		return 2
	}
	for {
		out.WriteByte('\n')
		writeIndent(out, depth+1)
		if b[0] == '{' {
			k := scalarLen(b[i:])
			out.Write(b[i : i+k])
			out.WriteString(": ")
			i += k + 1 // the key and ':'
		}
		i += prettyValue(out, b[i:], depth+1)
		if b[i] == ',' {
			out.WriteByte(',')
			i++
			continue
		}
		out.WriteByte('\n')
		writeIndent(out, depth)
		out.WriteByte(closing)
		return i + 1
	}
}

func writeIndent(out *bytes.Buffer, depth int) {
	for i := 0; i < depth; i++ {
		out.WriteString("  ")
	}
}

// writeInline copies a flat container, with a space after each comma and
// colon outside strings.
func writeInline(out *bytes.Buffer, b []byte) {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		out.WriteByte(c)
		switch {
		case inString && c == '\\':
			i++
			out.WriteByte(b[i])
		case c == '"':
			inString = !inString
		case !inString && (c == ',' || c == ':'):
			out.WriteByte(' ')
		}
	}
}

// scalarLen is the length of the string, number or literal at the start
// of b.
func scalarLen(b []byte) int {
	if b[0] == '"' {
		for i := 1; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return len(b)
	}
	i := 0
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ':' {
		i++
	}
	return i
}

// containerLen returns the length of the array or object at the start of
// b, and whether it holds no nested array or object.
func containerLen(b []byte) (int, bool) {
	depth, flat := 0, true
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i += scalarLen(b[i:]) - 1
		case '{', '[':
			depth++
			if depth > 1 {
				flat = false
			}
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, flat
			}
		}
	}
	return len(b), flat
}
